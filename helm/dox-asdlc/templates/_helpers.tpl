{{/*
Umbrella-only helpers: used by the umbrella's own templates and by no subchart. Every helper a subchart uses
lives in the dox-asdlc-common library chart (charts/dox-asdlc-common), which each subchart carries, so that
each subchart renders on its own; tests/chart checks that no subchart includes a helper defined here.
*/}}

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
