{{/* Names and labels shared by the templates. */}}
{{- define "seedsync-origin.fullname" -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}

{{- define "seedsync-origin.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* The environment shared by the serving pods and the migration job. */}}
{{- define "seedsync-origin.commonEnv" -}}
- name: CASSANDRA_KEYSPACE
  value: {{ .Values.config.cassandraKeyspace | quote }}
- name: CASSANDRA_REPLICATION
  value: {{ .Values.config.cassandraReplication | quote }}
- name: RUST_LOG
  value: {{ .Values.config.rustLog | quote }}
- name: SEEDSYNC_ENV
  value: {{ .Values.config.seedsyncEnv | quote }}
- name: OWNER_TOKEN_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ .Values.existingSecret }}
      key: owner-token-secret
- name: OWNER_TOKEN_PREVIOUS_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ .Values.existingSecret }}
      key: owner-token-previous-secret
      optional: true
- name: REGISTRY_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ .Values.existingSecret }}
      key: registry-secret
- name: REGISTRY_PREVIOUS_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ .Values.existingSecret }}
      key: registry-previous-secret
      optional: true
- name: EDGE_ORIGIN_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ .Values.existingSecret }}
      key: edge-origin-secret
- name: EDGE_ORIGIN_PREVIOUS_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ .Values.existingSecret }}
      key: edge-origin-previous-secret
      optional: true
{{- /* The origin refuses a notify secret without its URL (and the reverse): both or neither. */}}
{{- if .Values.config.edgeNotifyUrl }}
- name: EDGE_NOTIFY_URL
  value: {{ .Values.config.edgeNotifyUrl | quote }}
- name: EDGE_NOTIFY_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ .Values.existingSecret }}
      key: edge-notify-secret
{{- end }}
- name: ADMIN_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ .Values.existingSecret }}
      key: admin-token
      optional: true
{{- range $k, $v := .Values.config.extraEnv }}
- name: {{ $k }}
  value: {{ $v | quote }}
{{- end }}
{{- end -}}
