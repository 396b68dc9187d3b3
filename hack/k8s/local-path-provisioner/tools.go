//go:build tools

// Package tools pins the local-path provisioner, the kind cluster's volumes,
// built by hack/k8s/build.sh.
package tools

import (
	_ "github.com/rancher/local-path-provisioner"
)
