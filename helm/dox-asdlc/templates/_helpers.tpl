{{/*
Shared helpers of the dox-asdlc charts, in one place.

Helm parses the templates of a chart and of all its subcharts into one template namespace, so the subcharts in
charts/ call these defines directly (verified with helm v4). Every define is namespaced "dox-asdlc.".

Conventions:
- "ctx" is always the calling template's root context ($): it carries .Values (of the calling chart, with the
  umbrella's "global"), .Release, .Chart and .Template.
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

{{/* dox-asdlc.syncWave: Argo CD sync wave of a tier: base (-1), stateful (1), stateless (2) (argument: tier). */}}
{{- define "dox-asdlc.syncWave" -}}
{{- $waves := dict "base" "-1" "stateful" "1" "stateless" "2" -}}
{{- if not (hasKey $waves .) -}}
{{- fail (printf "dox-asdlc.syncWave: unknown tier %q" .) -}}
{{- end -}}
{{- get $waves . -}}
{{- end }}

{{/* dox-asdlc.annotations: provenance, sync wave and extra annotations of a top-level object; the first two win (args: ctx, wave, annotations). */}}
{{- define "dox-asdlc.annotations" -}}
{{- $fixed := dict
      "dox-asdlc.io/template" .ctx.Template.Name
      "argocd.argoproj.io/sync-wave" (include "dox-asdlc.syncWave" .wave) -}}
{{- toYaml (merge $fixed (deepCopy (.annotations | default dict))) -}}
{{- end }}

{{/*
dox-asdlc.metadata: the metadata block of a top-level object: name, namespace, labels, annotations.
Args: ctx, service, wave; optional name (default: the service's name), clusterScoped, labels and annotations
(extra maps).
*/}}
{{- define "dox-asdlc.metadata" -}}
{{- $svc := include "dox-asdlc.service" .service | fromYaml -}}
name: {{ .name | default $svc.name }}
{{- if not .clusterScoped }}
namespace: {{ include "dox-asdlc.namespace" .ctx }}
{{- end }}
labels:
  {{- include "dox-asdlc.labels" . | nindent 2 }}
  {{- with .labels }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
annotations:
  {{- include "dox-asdlc.annotations" . | nindent 2 }}
{{- end }}

{{/* dox-asdlc.podMetadata: labels and annotations of a pod template, no provenance (args: ctx, service, annotations). */}}
{{- define "dox-asdlc.podMetadata" -}}
labels:
  {{- include "dox-asdlc.labels" . | nindent 2 }}
{{- with .annotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* dox-asdlc.checksum: sha256 of another template of the calling chart, to roll pods when it changes (args: ctx, file). */}}
{{- define "dox-asdlc.checksum" -}}
{{- include (printf "%s/%s" .ctx.Template.BasePath .file) .ctx | sha256sum -}}
{{- end }}

{{/* dox-asdlc.image: image reference "[registry/]repository:tag[@digest]" (args: ctx, image values map). */}}
{{- define "dox-asdlc.image" -}}
{{- $repository := .image.repository -}}
{{- with .ctx.Values.global.imageRegistry -}}
{{- $repository = printf "%s/%s" (trimSuffix "/" .) $repository -}}
{{- end -}}
{{- $ref := printf "%s:%s" $repository (required "image.tag is required" .image.tag) -}}
{{- with .image.digest -}}
{{- $ref = printf "%s@%s" $ref . -}}
{{- end -}}
{{- $ref -}}
{{- end }}

{{/* dox-asdlc.serviceHost: fully qualified DNS name of a Service of the platform namespace (args: ctx, serviceName). */}}
{{- define "dox-asdlc.serviceHost" -}}
{{- printf "%s.%s.svc.%s" .serviceName (include "dox-asdlc.namespace" .ctx) .ctx.Values.global.clusterDomain -}}
{{- end }}

{{/* dox-asdlc.redisHost: REDIS_HOST, from global.redis.serviceName (argument: ctx). */}}
{{- define "dox-asdlc.redisHost" -}}
{{- include "dox-asdlc.serviceHost" (dict "ctx" . "serviceName" .Values.global.redis.serviceName) -}}
{{- end }}

{{/* dox-asdlc.redisUrl: REDIS_URL, from the same values as REDIS_HOST, REDIS_PORT and REDIS_DB (argument: ctx). */}}
{{- define "dox-asdlc.redisUrl" -}}
{{- printf "redis://%s:%d/%d" (include "dox-asdlc.redisHost" .) (int .Values.global.redis.port) (int .Values.global.redis.db) -}}
{{- end }}

{{/* dox-asdlc.knowledgeStoreHost: KNOWLEDGE_STORE_HOST, from global.knowledgeStore.serviceName (argument: ctx). */}}
{{- define "dox-asdlc.knowledgeStoreHost" -}}
{{- include "dox-asdlc.serviceHost" (dict "ctx" . "serviceName" .Values.global.knowledgeStore.serviceName) -}}
{{- end }}

{{/* dox-asdlc.knowledgeStoreUrl: KNOWLEDGE_STORE_URL, from the same values as its HOST and PORT (argument: ctx). */}}
{{- define "dox-asdlc.knowledgeStoreUrl" -}}
{{- printf "http://%s:%d" (include "dox-asdlc.knowledgeStoreHost" .) (int .Values.global.knowledgeStore.port) -}}
{{- end }}

{{/* dox-asdlc.orchestratorUrl: ORCHESTRATOR_URL, from global.orchestrator (argument: ctx). */}}
{{- define "dox-asdlc.orchestratorUrl" -}}
{{- $host := include "dox-asdlc.serviceHost" (dict "ctx" . "serviceName" .Values.global.orchestrator.serviceName) -}}
{{- printf "http://%s:%d" $host (int .Values.global.orchestrator.port) -}}
{{- end }}

{{/* dox-asdlc.podSecurityContext: a Pod Security "restricted" pod securityContext (argument: the chart's securityContext values). */}}
{{- define "dox-asdlc.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ int .runAsUser }}
runAsGroup: {{ int .runAsGroup }}
fsGroup: {{ int .fsGroup }}
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* dox-asdlc.containerSecurityContext: a Pod Security "restricted" container securityContext (no argument). */}}
{{- define "dox-asdlc.containerSecurityContext" -}}
allowPrivilegeEscalation: false
privileged: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop:
    - ALL
{{- end }}

{{/* dox-asdlc.secretEnv: one env entry read from a Secret key (args: env, secret: a global.secrets entry with name and key). */}}
{{- define "dox-asdlc.secretEnv" -}}
- name: {{ .env }}
  valueFrom:
    secretKeyRef:
      name: {{ .secret.name }}
      key: {{ .secret.key }}
{{- end }}

{{/* dox-asdlc.podPeer: a NetworkPolicy peer selecting the pods of one service of this release (args: ctx, service). */}}
{{- define "dox-asdlc.podPeer" -}}
- podSelector:
    matchLabels:
      {{- include "dox-asdlc.selectorLabels" . | nindent 6 }}
{{- end }}

{{/*
dox-asdlc.ipBlockPeers: NetworkPolicy peers from a map of named ipBlocks {enabled, cidr, except} (argument: the map).
A block with enabled: false is skipped: Helm v4 does not delete a key under "global" that an override sets to
null, so switching a default block off must be a value, not a deletion.
*/}}
{{- define "dox-asdlc.ipBlockPeers" -}}
{{- range $name, $block := . }}
{{- if and $block (or (not (hasKey $block "enabled")) $block.enabled) }}
- ipBlock:
    cidr: {{ $block.cidr }}
    {{- with $block.except }}
    except:
      {{- toYaml . | nindent 6 }}
    {{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* dox-asdlc.dnsEgressRule: egress rule to the cluster DNS pods on UDP and TCP 53 (argument: ctx). */}}
{{- define "dox-asdlc.dnsEgressRule" -}}
{{- $dns := .Values.global.networkPolicy.dns -}}
- to:
    - namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: {{ $dns.namespace }}
      podSelector:
        matchLabels:
          {{- toYaml $dns.podLabels | nindent 10 }}
  ports:
    - protocol: UDP
      port: 53
    - protocol: TCP
      port: 53
{{- end }}

{{/* dox-asdlc.claudeApiEgressRule: egress rule to the Claude API on TCP 443, omitted when no ipBlock is set (argument: ctx). */}}
{{- define "dox-asdlc.claudeApiEgressRule" -}}
{{- $peers := include "dox-asdlc.ipBlockPeers" .Values.global.networkPolicy.claudeApi.ipBlocks | trim -}}
{{- if $peers -}}
- to:
    {{- $peers | nindent 4 }}
  ports:
    - protocol: TCP
      port: 443
{{- end }}
{{- end }}

{{/*
dox-asdlc.externalSecret: an External Secrets Operator ExternalSecret that materialises one entry of
global.secrets under the same Secret name (args: ctx, secret: the key in global.secrets).
An entry with "key" maps one remote property to that key; an entry without "key" (Git credentials, mounted as
files) takes every property of the remote secret (dataFrom.extract).
*/}}
{{- define "dox-asdlc.externalSecret" -}}
{{- $es := .ctx.Values.global.externalSecrets -}}
{{- $secret := get .ctx.Values.global.secrets .secret -}}
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  {{- include "dox-asdlc.metadata" (dict "ctx" .ctx "service" "base" "name" $secret.name "wave" "base") | nindent 2 }}
spec:
  refreshInterval: {{ $es.refreshInterval | quote }}
  secretStoreRef:
    kind: {{ $es.secretStoreRef.kind }}
    name: {{ $es.secretStoreRef.name }}
  target:
    name: {{ $secret.name }}
    creationPolicy: Owner
    deletionPolicy: Retain
  {{- if $secret.key }}
  data:
    - secretKey: {{ $secret.key }}
      remoteRef:
        key: {{ $secret.remoteRef.key }}
        {{- with $secret.remoteRef.property }}
        property: {{ . }}
        {{- end }}
  {{- else }}
  dataFrom:
    - extract:
        key: {{ $secret.remoteRef.key }}
  {{- end }}
{{- end }}
