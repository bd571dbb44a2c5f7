{{- define "modelrollout.labels" -}}
app.kubernetes.io/part-of: modelrollout
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}

{{- define "modelrollout.operatorSelector" -}}
app.kubernetes.io/name: modelrollout-operator
{{- end -}}
