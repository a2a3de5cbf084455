{{/* Object and pod template metadata: sync waves, annotations, checksums. Conventions: _identity.tpl. */}}

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
