//go:build tools

// Package tools pins the prometheus-adapter built by hack/k8s/build.sh.
package tools

import (
	_ "sigs.k8s.io/prometheus-adapter/cmd/adapter"
)
