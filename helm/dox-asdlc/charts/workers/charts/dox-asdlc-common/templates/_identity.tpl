{{/*
Identity: the service table, namespace, labels and selectors.

The dox-asdlc-common library chart (type: library) holds every helper that more than one chart uses. The umbrella
and each subchart declare it as a dependency, so each of them renders on its own. Every define is namespaced
"dox-asdlc." and documented by a one-line comment above it.

Conventions of every helper:
- "ctx" is always the calling template's root context ($): it carries .Values (of the calling chart, with the
  umbrella's "global"), .Release, .Chart and .Template. A library template runs with its caller's context, so
  .Chart is the calling chart and .Template the calling template.
- "service" is a key of dox-asdlc.services. Object names, labels and selectors come from that table, never from
  .Chart.Name (a dependency alias such as "hitlUI" replaces .Chart.Name and is not a valid DNS name).
*/}}

{{/* dox-asdlc.services: the fixed identity of each service: object name, component label and role label. */}}
{{- define "dox-asdlc.services" -}}
base:
  name: dox-asdlc
  component: base
  role: base
orchestrator:
  name: orchestrator
  component: orchestrator
  role: singleton
workers:
  name: workers
  component: worker
  role: autoscaled-pool
hitl-ui:
  name: hitl-ui
  component: ui
  role: web
redis:
  name: redis
  component: event-store
  role: stateful
knowledge-store:
  name: knowledge-store
  component: knowledge-store
  role: stateful
{{- end }}

{{/* dox-asdlc.service: one entry of dox-asdlc.services as YAML (argument: its key); fails on an unknown key. */}}
{{- define "dox-asdlc.service" -}}
{{- $entry := get (include "dox-asdlc.services" . | fromYaml) . -}}
{{- if not $entry -}}
{{- fail (printf "dox-asdlc.service: unknown service %q" .) -}}
{{- end -}}
{{- toYaml $entry -}}
{{- end }}

{{/* dox-asdlc.namespace: the one namespace of every namespaced object, global.namespace (argument: ctx). */}}
{{- define "dox-asdlc.namespace" -}}
{{- required "global.namespace is required" .Values.global.namespace -}}
{{- end }}

{{/* dox-asdlc.version: app version label: the chart's image tag, else its appVersion (argument: ctx). */}}
{{- define "dox-asdlc.version" -}}
{{- $tag := "" -}}
{{- with .Values.image -}}
{{- $tag = .tag -}}
{{- end -}}
{{- $tag | default .Chart.AppVersion | trunc 63 | trimSuffix "-" -}}
{{- end }}

{{/* dox-asdlc.chart: the helm.sh/chart label, "<chart directory name>-<version>" (args: ctx, service). */}}
{{- define "dox-asdlc.chart" -}}
{{- $svc := include "dox-asdlc.service" .service | fromYaml -}}
{{- printf "%s-%s" $svc.name .ctx.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end }}

{{/* dox-asdlc.selectorLabels: the immutable labels that selectors use (args: ctx, service). */}}
{{- define "dox-asdlc.selectorLabels" -}}
{{- $svc := include "dox-asdlc.service" .service | fromYaml -}}
app.kubernetes.io/name: {{ $svc.name }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
{{- end }}

{{/* dox-asdlc.labels: the standard labels of every object and pod template (args: ctx, service). */}}
{{- define "dox-asdlc.labels" -}}
{{- $svc := include "dox-asdlc.service" .service | fromYaml -}}
{{ include "dox-asdlc.selectorLabels" . }}
app.kubernetes.io/version: {{ include "dox-asdlc.version" .ctx | quote }}
app.kubernetes.io/component: {{ $svc.component }}
app.kubernetes.io/part-of: dox-asdlc
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
helm.sh/chart: {{ include "dox-asdlc.chart" . }}
dox-asdlc.io/role: {{ $svc.role }}
{{- end }}
