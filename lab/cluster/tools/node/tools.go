//go:build tools

// Package tools only records the main packages build.sh compiles for the test bed's real
// nodes, so `go mod tidy` keeps their dependencies in go.sum.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
