{{/* Pod spec parts: image reference, Pod Security "restricted" contexts, Secret env entries. Conventions: _identity.tpl. */}}

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
