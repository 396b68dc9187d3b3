//go:build tools

// Package tools pins the helm tool built by hack/k8s/build.sh.
package tools

import (
	_ "helm.sh/helm/v3/cmd/helm"
)
