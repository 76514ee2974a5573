{{/*
Names and labels.
*/}}
{{- define "connector.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "connector.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* The name of one connector's objects; argument: dict root, name. */}}
{{- define "connector.instanceName" -}}
{{- printf "%s-%s" (include "connector.fullname" .root) .name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "connector.selectorLabels" -}}
app.kubernetes.io/name: {{ include "connector.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "connector.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "connector.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Labels of one connector's objects; argument: dict root, name. */}}
{{- define "connector.instanceLabels" -}}
{{ include "connector.labels" .root }}
app.kubernetes.io/component: {{ .name }}
{{- end }}

{{- define "connector.instanceSelectorLabels" -}}
{{ include "connector.selectorLabels" .root }}
app.kubernetes.io/component: {{ .name }}
{{- end }}

{{- define "connector.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "connector.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "connector.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/*
Deep merge of maps: every key of src into dst, recursing where both hold maps; anything else
in src replaces dst's value (false, 0 and "" included, and lists whole). Argument: list dst src.
Mutates dst.
*/}}
{{- define "connector.deepMerge" -}}
{{- $dst := index . 0 }}
{{- range $key, $value := index . 1 }}
{{- $current := get $dst $key }}
{{- if and (kindIs "map" $value) (kindIs "map" $current) }}
{{- include "connector.deepMerge" (list $current $value) }}
{{- else }}
{{- $_ := set $dst $key (deepCopy $value) }}
{{- end }}
{{- end }}
{{- end }}

{{/* Where the chart mounts things in every connector container. */}}
{{- define "connector.paths" -}}
config: /etc/connector/config
secrets: /etc/connector/secrets
kafkaTls: /etc/connector/kafka-tls
kafkaSasl: /etc/connector/kafka-sasl
registryAuth: /etc/connector/registry-auth
registryTls: /etc/connector/registry-tls
spool: /var/lib/connector/spool
{{- end }}

{{/*
One connector's configuration as a map, rendered to YAML: what the chart derives from
kafka.tls/kafka.sasl and schemaRegistry, then the shared config, then the connector's own, then
the keys the chart owns (name, metrics). Secret values are never part of it: they reach the
process as mounted files, named by {file: …} references. Argument: dict root, name, connector.
*/}}
{{- define "connector.configYaml" -}}
{{- $root := .root }}
{{- $paths := include "connector.paths" . | fromYaml }}
{{- $security := dict }}
{{- if $root.Values.kafka.sasl.enabled }}
{{- $_ := set $security "security.protocol" $root.Values.kafka.sasl.securityProtocol }}
{{- $_ := set $security "sasl.mechanism" $root.Values.kafka.sasl.mechanism }}
{{- $sasl := $root.Values.kafka.sasl }}
{{- $_ := set $security "sasl.username" (dict "file" (printf "%s/%s" $paths.kafkaSasl $sasl.usernameKey)) }}
{{- $_ := set $security "sasl.password" (dict "file" (printf "%s/%s" $paths.kafkaSasl $sasl.passwordKey)) }}
{{- else if $root.Values.kafka.tls.enabled }}
{{- $_ := set $security "security.protocol" "SSL" }}
{{- end }}
{{- if $root.Values.kafka.tls.enabled }}
{{- $tls := $root.Values.kafka.tls }}
{{- $_ := set $security "ssl.ca.location" (printf "%s/%s" $paths.kafkaTls $tls.caKey) }}
{{- if $tls.certKey }}
{{- $_ := set $security "ssl.certificate.location" (printf "%s/%s" $paths.kafkaTls $tls.certKey) }}
{{- $_ := set $security "ssl.key.location" (printf "%s/%s" $paths.kafkaTls $tls.keyKey) }}
{{- end }}
{{- end }}
{{- $config := dict }}
{{- if $security }}
{{- $_ := set $config "kafka" (dict "security" $security) }}
{{- end }}
{{- $registry := dict }}
{{- with $root.Values.schemaRegistry.auth }}
{{- if .enabled }}
{{- $_ := set $registry "username" (dict "file" (printf "%s/%s" $paths.registryAuth .usernameKey)) }}
{{- $_ := set $registry "password" (dict "file" (printf "%s/%s" $paths.registryAuth .passwordKey)) }}
{{- end }}
{{- end }}
{{- with $root.Values.schemaRegistry.tls }}
{{- if .enabled }}
{{- $_ := set $registry "ca_file" (printf "%s/%s" $paths.registryTls .caKey) }}
{{- if .certKey }}
{{- $_ := set $registry "client_cert_file" (printf "%s/%s" $paths.registryTls .certKey) }}
{{- $_ := set $registry "client_key_file" (printf "%s/%s" $paths.registryTls .keyKey) }}
{{- end }}
{{- end }}
{{- end }}
{{- if $registry }}
{{- $_ := set $config "schema_registry" $registry }}
{{- end }}
{{- include "connector.deepMerge" (list $config ($root.Values.config | default dict)) }}
{{- include "connector.deepMerge" (list $config (.connector.config | default dict)) }}
{{- $_ := set $config "name" .name }}
{{- $spool := $config.spool | default dict }}
{{- $_ := set $spool "path" $paths.spool }}
{{- $_ := set $config "spool" $spool }}
{{- $_ := set $config "metrics" (dict "host" "0.0.0.0" "port" $root.Values.metrics.port) }}
{{- toYaml $config }}
{{- end }}
