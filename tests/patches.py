"""Kustomize patches several test modules plant in an environment's kustomization.yaml."""

#: A label added to Deployment hitl-ui's selector and pod template alike: a valid object whose selector the API
#: server refuses to change in place (the diff's immutable verdict, the rehearsal's failed sync).
SELECTOR_PATCH = """patches:
  - target: {kind: Deployment, name: hitl-ui}
    patch: |-
      - op: add
        path: /spec/selector/matchLabels/tier
        value: web
      - op: add
        path: /spec/template/metadata/labels/tier
        value: web
"""
