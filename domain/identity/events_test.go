package identity_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mydigibiz/digibiz/domain/identity"
)

// Every field that holds a hash of a secret (a password, a token, an invitation code) is tagged
// secret:"true", so that the event feed can leave it out; a new hash field without the tag fails.
func TestHashesAreTaggedSecret(t *testing.T) {
	t.Parallel()
	for _, ev := range identity.Events() {
		typ := reflect.TypeOf(ev)
		for i := range typ.NumField() {
			f := typ.Field(i)
			if strings.HasSuffix(f.Name, "Hash") {
				require.Equal(t, "true", f.Tag.Get("secret"), "%s.%s", typ.Name(), f.Name)
			} else {
				require.Empty(t, f.Tag.Get("secret"), "%s.%s", typ.Name(), f.Name)
			}
		}
	}
}
