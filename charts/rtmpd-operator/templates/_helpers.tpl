{{/* Chart name, truncated to fit Kubernetes names. */}}
{{- define "rtmpd-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 52 | trimSuffix "-" }}
{{- end }}

{{/* Full name: release-chart unless the release name already holds the chart name. */}}
{{- define "rtmpd-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "rtmpd-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "rtmpd-operator.labels" -}}
helm.sh/chart: {{ include "rtmpd-operator.chart" . }}
{{ include "rtmpd-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: flux-rtmpd
{{- end }}

{{/* Labels that select the operator pods. */}}
{{- define "rtmpd-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "rtmpd-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "rtmpd-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "rtmpd-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "rtmpd-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{- define "rtmpd-operator.rtmpdImage" -}}
{{- printf "%s:%s" .Values.rtmpdImage.repository (.Values.rtmpdImage.tag | default .Chart.AppVersion) }}
{{- end }}

{{/* The variant whose ffmpeg transcodes: by default rtmpdImage's repository and tag, with -transcode after the tag. */}}
{{- define "rtmpd-operator.rtmpdTranscodeImage" -}}
{{- $repository := .Values.rtmpdTranscodeImage.repository | default .Values.rtmpdImage.repository }}
{{- $tag := .Values.rtmpdTranscodeImage.tag | default (printf "%s-transcode" (.Values.rtmpdImage.tag | default .Chart.AppVersion)) }}
{{- printf "%s:%s" $repository $tag }}
{{- end }}

{{/*
The operator's RBAC rules, from files/rbac/role.yaml: the file `make generate`
writes from operator/src/rbac.ts (`make lint` checks the copy is current).
"rtmpd-operator.rules" dict "root" . "name" "rtmpd-operator"|"rtmpd-operator-leader-election"|… → the rules list as YAML.
*/}}
{{- define "rtmpd-operator.rules" -}}
{{- $found := false }}
{{- range $doc := splitList "\n---\n" (.root.Files.Get "files/rbac/role.yaml") }}
{{- $obj := fromYaml $doc }}
{{- if eq (get (get $obj "metadata") "name") $.name }}
{{- $found = true }}
{{- toYaml (get $obj "rules") }}
{{- end }}
{{- end }}
{{- if not $found }}
{{- fail (printf "files/rbac/role.yaml holds no role %s (regenerate it: make generate)" .name) }}
{{- end }}
{{- end }}

{{/* Leader election needs more than one replica to be safe. */}}
{{- define "rtmpd-operator.validate" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.leaderElection.enabled) }}
{{- fail "replicaCount > 1 needs leaderElection.enabled=true (otherwise several operators reconcile at once)" }}
{{- end }}
{{- end }}
