{{/*
Names. Kubernetes names are DNS labels: at most 63 characters.
*/}}
{{- define "telemesh.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "telemesh.fullname" -}}
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

{{/* Name of one service's objects. Call with (dict "root" $ "name" "aggregator"). */}}
{{- define "telemesh.componentName" -}}
{{- printf "%s-%s" (include "telemesh.fullname" .root | trunc (int (sub 62 (len .name)))) .name | trimSuffix "-" }}
{{- end }}

{{/* The FIX sequence store's claim (created unless existingClaim). Call with the component context. */}}
{{- define "telemesh.fixStoreClaim" -}}
{{- .svc.sequenceStore.persistence.existingClaim | default (printf "%s-store" (include "telemesh.componentName" . | trunc 57 | trimSuffix "-")) }}
{{- end }}

{{- define "telemesh.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The recommended labels (https://helm.sh/docs/chart_best_practices/labels).
*/}}
{{- define "telemesh.labels" -}}
helm.sh/chart: {{ include "telemesh.chart" . }}
{{ include "telemesh.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: telemesh
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "telemesh.selectorLabels" -}}
app.kubernetes.io/name: {{ include "telemesh.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of one service's objects. Call with (dict "root" $ "name" "aggregator"). */}}
{{- define "telemesh.componentLabels" -}}
{{ include "telemesh.labels" .root }}
app.kubernetes.io/component: {{ .name }}
{{- end }}

{{- define "telemesh.componentSelectorLabels" -}}
{{ include "telemesh.selectorLabels" .root }}
app.kubernetes.io/component: {{ .name }}
{{- end }}

{{- define "telemesh.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "telemesh.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "telemesh.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/* Where the config file and the Kafka CA are mounted. */}}
{{- define "telemesh.configDir" -}}/etc/telemesh/config{{- end }}
{{- define "telemesh.configFile" -}}/etc/telemesh/config/telemesh.toml{{- end }}
{{- define "telemesh.kafkaCaDir" -}}/etc/telemesh/kafka-ca{{- end }}
{{- define "telemesh.runbooksDir" -}}/etc/telemesh/runbooks{{- end }}
{{- define "telemesh.rosterDir" -}}/etc/telemesh/roster{{- end }}

{{/* The config-file section of a service: its name with "-" → "_" (kafka-readiness → kafka_readiness). */}}
{{- define "telemesh.section" -}}
{{- replace "-" "_" . }}
{{- end }}

{{/*
One TOML value. Numbers from values files are float64 in templates: integral ones are
written as TOML integers (the binary reads them into integer and float keys alike),
others as floats. Strings are JSON-escaped, which is valid TOML basic-string syntax.
*/}}
{{- define "telemesh.tomlValue" -}}
{{- $v := . }}
{{- if kindIs "string" $v }}
{{- toJson $v }}
{{- else if kindIs "bool" $v }}
{{- ternary "true" "false" $v }}
{{- else if or (kindIs "int" $v) (kindIs "int64" $v) }}
{{- $v }}
{{- else if kindIs "float64" $v }}
{{- if and (eq $v (float64 (int64 $v))) (lt $v 1e15) (gt $v -1e15) }}
{{- int64 $v }}
{{- else }}
{{- toJson $v }}
{{- end }}
{{- else if kindIs "slice" $v }}
{{- $items := list }}
{{- range $v }}
{{- $items = append $items (include "telemesh.tomlValue" .) }}
{{- end }}
{{- printf "[%s]" (join ", " $items) }}
{{- else }}
{{- fail (printf "telemesh: cannot render %v (%s) into the config file: use a string, number, boolean or list" $v (kindOf $v)) }}
{{- end }}
{{- end }}

{{/*
A TOML table, keys sorted: scalars and lists first, then sub-tables ([path.key]) and arrays
of tables ([[path.key]], from lists of maps). Call with (list "[path]" "path" $map).
*/}}
{{- define "telemesh.tomlTable" -}}
{{- $header := index . 0 }}
{{- $path := index . 1 }}
{{- $map := index . 2 }}
{{ $header }}
{{- range $key := keys $map | sortAlpha }}
{{- $value := index $map $key }}
{{- $isTable := kindIs "map" $value }}
{{- $isTables := and (kindIs "slice" $value) (gt (len $value) 0) (kindIs "map" (first $value)) }}
{{- if not (or (kindIs "invalid" $value) $isTable $isTables) }}
{{ $key }} = {{ include "telemesh.tomlValue" $value }}
{{- end }}
{{- end }}
{{- range $key := keys $map | sortAlpha }}
{{- $value := index $map $key }}
{{- $sub := printf "%s.%s" $path $key }}
{{- if kindIs "map" $value }}

{{ include "telemesh.tomlTable" (list (printf "[%s]" $sub) $sub $value) | trimPrefix "\n" }}
{{- else if and (kindIs "slice" $value) (gt (len $value) 0) (kindIs "map" (first $value)) }}
{{- range $item := $value }}
{{- if not (kindIs "map" $item) }}
{{- fail (printf "telemesh: %s mixes tables and plain values" $sub) }}
{{- end }}

{{ include "telemesh.tomlTable" (list (printf "[[%s]]" $sub) $sub $item) | trimPrefix "\n" }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Environment of a service container: the pod name as instance, secrets from existing
Secrets, extra variables. Call with (dict "root" $ "name" "aggregator" "svc" $svc).
*/}}
{{- define "telemesh.env" -}}
{{- $root := .root }}
{{- $v := $root.Values -}}
- name: TELEMESH__SERVICE__INSTANCE
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
{{- if $v.kafka.enabled }}
{{- if $v.kafka.sasl.existingSecret }}
- name: TELEMESH__KAFKA__PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $v.kafka.sasl.existingSecret }}
      key: {{ $v.kafka.sasl.passwordKey }}
{{- if $v.kafka.sasl.usernameKey }}
- name: TELEMESH__KAFKA__USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ $v.kafka.sasl.existingSecret }}
      key: {{ $v.kafka.sasl.usernameKey }}
{{- end }}
{{- end }}
{{- end }}
{{- if eq .name "aggregator" }}
{{- if gt (int .svc.replicaCount) 1 }}
{{- /* replicas: only the alerting leader pages; it reads what the others consumed from the journal */}}
- name: TELEMESH__ALERTING__JOURNAL_POLL_SECONDS
  value: "5"
{{- end }}
{{- if $v.journal.existingSecret }}
- name: TELEMESH__JOURNAL__URL
  valueFrom:
    secretKeyRef:
      name: {{ $v.journal.existingSecret }}
      key: {{ $v.journal.urlKey }}
{{- end }}
{{- with $v.alerting.slack.existingSecret }}
- name: SLACK_WEBHOOK_URL
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $v.alerting.slack.key }}
{{- end }}
{{- with $v.alerting.github.existingSecret }}
- name: GITHUB_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $v.alerting.github.key }}
{{- end }}
{{- with $v.api.auth.existingSecret }}
- name: TELEMESH__ALERTING__API_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $v.api.auth.key }}
{{- end }}
{{- end }}
{{- if and (eq .name "ingest") $v.api.ingest.existingSecret }}
- name: TELEMESH__INGEST__API_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ $v.api.ingest.existingSecret }}
      key: {{ $v.api.ingest.key }}
{{- end }}
{{- if and (eq .name "incident-response") $v.api.incidentResponse.existingSecret }}
- name: TELEMESH__INCIDENT_RESPONSE__API_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ $v.api.incidentResponse.existingSecret }}
      key: {{ $v.api.incidentResponse.key }}
{{- end }}
{{- if and (eq .name "aggregator") $v.api.activities.existingSecret }}
- name: TELEMESH__AGGREGATOR__ACTIVITIES_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ $v.api.activities.existingSecret }}
      key: {{ $v.api.activities.key }}
{{- end }}
{{- if and (eq .name "incident-response") $v.api.activities.existingSecret }}
- name: TELEMESH__INCIDENT_RESPONSE__AGGREGATOR_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ $v.api.activities.existingSecret }}
      key: {{ $v.api.activities.key }}
{{- end }}
{{- if and (eq .name "cache-health") .svc.redis .svc.redis.existingSecret }}
- name: TELEMESH__CACHE_HEALTH__URL
  valueFrom:
    secretKeyRef:
      name: {{ .svc.redis.existingSecret }}
      key: {{ .svc.redis.urlKey }}
{{- end }}
{{- if and (eq .name "system-validation") $v.api.systemValidation $v.api.systemValidation.existingSecret }}
- name: TELEMESH__SYSTEM_VALIDATION__API_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ $v.api.systemValidation.existingSecret }}
      key: {{ $v.api.systemValidation.key }}
{{- end }}
{{- if and (eq .name "ci") .svc.secrets .svc.secrets.existingSecret }}
{{- $ci := .svc.secrets }}
{{- range $var, $key := dict "TELEMESH__CI__WEBHOOK_SECRET" $ci.webhookSecretKey "TELEMESH__CI__API_TOKEN" $ci.apiTokenKey "TELEMESH__CI__GITHUB_TOKEN" $ci.githubTokenKey "TELEMESH__CI__AGGREGATOR_TOKEN" ($ci.aggregatorTokenKey | default "") }}
{{- if $key }}
- name: {{ $var }}
  valueFrom:
    secretKeyRef:
      name: {{ $ci.existingSecret }}
      key: {{ $key }}
{{- end }}
{{- end }}
{{- end }}
{{- with $v.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- with .svc.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}
