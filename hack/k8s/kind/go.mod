module github.com/flux-rtmpd/flux-rtmpd/hack/k8s/kind

go 1.26.0

require sigs.k8s.io/kind v0.33.0
