//go:build tools

// Package tools records the helm main package that build.sh compiles.
package tools

import _ "helm.sh/helm/v3/cmd/helm"
