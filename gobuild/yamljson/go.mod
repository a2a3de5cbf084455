// Wrapper module that builds yamljson, the Go YAML reader of the render's oracle test.
//
// It pins sigs.k8s.io/yaml at the version kubectl v1.36.1 uses (gobuild/kube/go.mod) and the
// go.yaml.in/yaml/v2 release under it, so it reads YAML as kubectl, kubeconform and Argo CD do.
// Bump the version here and in tools.toml ([cluster.yamljson]).
module dox-asdlc.local/gobuild/yamljson

go 1.26.0

require sigs.k8s.io/yaml v1.6.0

require go.yaml.in/yaml/v2 v2.4.3 // indirect
