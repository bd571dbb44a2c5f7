//go:build tools

// The upstream command this module builds; nothing here is compiled into a binary of ours.
package tools

import _ "sigs.k8s.io/kwok/cmd/kwok"
