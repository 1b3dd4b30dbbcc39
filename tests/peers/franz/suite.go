// Package franzsuite only pins franz-go's version so that `go test
// github.com/twmb/franz-go/pkg/kgo` runs its integration suite from this module
// (tests/peers/test_franz_go.py drives it against a dcmirror cluster).
package franzsuite

import _ "github.com/twmb/franz-go/pkg/kgo"
