{{/* Name of the chart, or nameOverride. */}}
{{- define "trickle.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Prefix of every object's name: fullnameOverride, else RELEASE-NAME (just
RELEASE when it already contains the name). 63 characters at most (DNS label).
*/}}
{{- define "trickle.fullname" -}}
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

{{- define "trickle.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "trickle.labels" -}}
helm.sh/chart: {{ include "trickle.chart" . }}
{{ include "trickle.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Labels selecting the pod; fixed for the life of the StatefulSet. */}}
{{- define "trickle.selectorLabels" -}}
app.kubernetes.io/name: {{ include "trickle.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "trickle.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "trickle.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret and key holding the DSN. */}}
{{- define "trickle.dsnSecretName" -}}
{{- if .Values.database.existingSecret }}
{{- .Values.database.existingSecret }}
{{- else }}
{{- include "trickle.fullname" . }}
{{- end }}
{{- end }}

{{- define "trickle.dsnSecretKey" -}}
{{- if .Values.database.existingSecret }}
{{- .Values.database.existingSecretKey }}
{{- else -}}
dsn
{{- end }}
{{- end }}

{{/* Whether there is a token, and where. */}}
{{- define "trickle.hasToken" -}}
{{- if or .Values.auth.existingSecret .Values.auth.token }}true{{ end }}
{{- end }}

{{- define "trickle.tokenSecretName" -}}
{{- if .Values.auth.existingSecret }}
{{- .Values.auth.existingSecret }}
{{- else }}
{{- include "trickle.fullname" . }}
{{- end }}
{{- end }}

{{- define "trickle.tokenSecretKey" -}}
{{- if .Values.auth.existingSecret }}
{{- .Values.auth.existingSecretKey }}
{{- else -}}
token
{{- end }}
{{- end }}

{{/* The database must be named one way or the other. */}}
{{- define "trickle.validate" -}}
{{- if and (not .Values.database.dsn) (not .Values.database.existingSecret) }}
{{- fail "trickle: set database.dsn (the source database's connection string) or database.existingSecret (a Secret holding it)" }}
{{- end }}
{{- if and .Values.networkPolicy.enabled .Values.networkPolicy.egress.enabled (not .Values.networkPolicy.egress.databaseTo) }}
{{- fail "trickle: networkPolicy.egress.enabled needs networkPolicy.egress.databaseTo (the database's address as NetworkPolicy peers)" }}
{{- end }}
{{- end }}
