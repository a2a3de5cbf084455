{{/* Endpoints of the platform Services, each derived from one global value. Conventions: _identity.tpl. */}}

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
