//go:build tools

// Package tools pins the kwok tool built by hack/k8s/build.sh.
package tools

import (
	_ "sigs.k8s.io/kwok/cmd/kwok"
	_ "sigs.k8s.io/kwok/cmd/kwokctl"
)
