//go:build tools

// Package tools pins the etcd tool built by hack/k8s/build.sh.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
)
