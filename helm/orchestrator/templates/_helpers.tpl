{{/* Release-scoped base name, at most 63 characters. */}}
{{- define "orchestrator.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "orchestrator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector labels of one component; call with (dict "root" $ "component" "<name>"). */}}
{{- define "orchestrator.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "orchestrator.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* The Secret and key holding the libpq conninfo. */}}
{{- define "orchestrator.databaseSecretName" -}}
{{- if .Values.database.bundled -}}
{{ include "orchestrator.fullname" . }}-database
{{- else -}}
{{ required "database.existingSecret is required when database.bundled is false" .Values.database.existingSecret }}
{{- end -}}
{{- end -}}

{{- define "orchestrator.databaseSecretKey" -}}
{{- if .Values.database.bundled -}}database-url{{- else -}}{{ .Values.database.existingSecretKey }}{{- end -}}
{{- end -}}

{{- define "orchestrator.secretsKeySecretName" -}}
{{- .Values.secretsKey.existingSecret | default (printf "%s-secrets-key" (include "orchestrator.fullname" .)) -}}
{{- end -}}

{{- define "orchestrator.meshCredentialSecretName" -}}
{{- .Values.meshCredential.existingSecret | default (printf "%s-mesh-credential" (include "orchestrator.fullname" .)) -}}
{{- end -}}

{{/* The components this release runs (entries of .Values.components not set to null), comma-separated, sorted. */}}
{{- define "orchestrator.componentNames" -}}
{{- $names := list -}}
{{- range $name, $component := .Values.components -}}
{{- if $component }}{{ $names = append $names $name }}{{ end -}}
{{- end -}}
{{- join "," $names -}}
{{- end -}}
