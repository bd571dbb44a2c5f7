{{- define "modelrollout.labels" -}}
app.kubernetes.io/part-of: modelrollout
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end -}}

{{- define "modelrollout.operatorSelector" -}}
app.kubernetes.io/name: modelrollout-operator
{{- end -}}
