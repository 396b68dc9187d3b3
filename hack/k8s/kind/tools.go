//go:build tools

// Package tools pins the kind tool built by hack/k8s/build.sh.
package tools

import (
	_ "sigs.k8s.io/kind"
)
