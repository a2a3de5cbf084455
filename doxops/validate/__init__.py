"""``./dox validate``: kubeconform (schema stage) then the policy engine (rules/)."""
