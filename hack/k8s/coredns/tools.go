//go:build tools

// Package tools pins CoreDNS, the kind cluster's DNS, built by hack/k8s/build.sh.
package tools

import (
	_ "github.com/coredns/coredns"
)
