//go:build tools

// The upstream command this module builds; nothing here is compiled into a binary of ours.
package tools

import _ "github.com/kserve/kserve/cmd/manager"
