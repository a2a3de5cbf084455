{{/* NetworkPolicy peers and egress rules. Conventions: _identity.tpl. */}}

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
