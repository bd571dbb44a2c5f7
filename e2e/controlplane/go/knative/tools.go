//go:build tools

// The upstream commands this module builds; nothing here is compiled into a binary of ours.
package tools

import (
	_ "knative.dev/serving/cmd/autoscaler"
	_ "knative.dev/serving/cmd/controller"
	_ "knative.dev/serving/cmd/webhook"
)
