package identity_test

import (
	"runtime"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/mydigibiz/digibiz/domain/fault"
	"github.com/mydigibiz/digibiz/domain/identity"
)

// Each password, given by Ada Lovelace (ada.lovelace@example.com) for her workspace Shop, is
// accepted, or refused with this code and a message holding this text.
func TestCheckPassword(t *testing.T) {
	t.Parallel()
	const (
		common     = "is one of the 100,000 most common passwords:"
		commonPlus = "one of the 100,000 most common passwords with only digits or symbols added at the end"
		mine       = "made of your name, your email address, the workspace name or this service's name"
	)
	tests := []struct {
		pw, code, message string
	}{
		// Accepted: long passphrases of uncommon words, and random strings.
		{pw: "correct horse battery staple"}, // the end-to-end tests' strongPassword
		{pw: "vT9#qLm2!xRw8@pZ"},
		{pw: "Tr0ub4dor&3x"},
		{pw: "correct horse battery"},
		{pw: "8302918471"}, // ten random digits: nobody's name
		{pw: "Lovelace correct staple"},

		// The length rules and the variety rule, as before.
		{pw: "short", code: "WEAK_PASSWORD", message: "at least 10 characters"},
		{pw: strings.Repeat("vT9#qLm2!xRw8@pZ", 17), code: "TOO_LONG", message: "at most 256 characters"},
		{pw: "abababababab", code: "WEAK_PASSWORD", message: "use more different characters"},

		// On the NCSC's list of the 100,000 most common passwords, in any case.
		{pw: "qwerty123456", code: "WEAK_PASSWORD", message: common},
		{pw: "0123456789", code: "WEAK_PASSWORD", message: common},
		{pw: "password123", code: "WEAK_PASSWORD", message: common},
		{pw: "iloveyou12", code: "WEAK_PASSWORD", message: common},
		{pw: "PASSWORD123", code: "WEAK_PASSWORD", message: common},
		{pw: "1qaz2wsx3edc", code: "WEAK_PASSWORD", message: common},
		{pw: "Password1!", code: "WEAK_PASSWORD", message: common},
		{pw: "abcdefghijkl", code: "WEAK_PASSWORD", message: common},
		// … or once the digits and symbols at its end are taken off.
		{pw: "Password2024!", code: "WEAK_PASSWORD", message: commonPlus},
		{pw: "letmein1234", code: "WEAK_PASSWORD", message: commonPlus},
		{pw: "Jennifer1987", code: "WEAK_PASSWORD", message: commonPlus},
		{pw: "P@ssw0rd2024", code: "WEAK_PASSWORD", message: commonPlus},
		{pw: "sunshine!#83$", code: "WEAK_PASSWORD", message: commonPlus},

		// Made of what the user gave.
		{pw: "ada.lovelace-2024", code: "WEAK_PASSWORD", message: "must not contain your email address"},
		{pw: "adalovelace99", code: "WEAK_PASSWORD", message: mine},
		{pw: "shop lovelace ada", code: "WEAK_PASSWORD", message: mine},
		{pw: "Lovelace!Shop", code: "WEAK_PASSWORD", message: mine},
		{pw: "mydigibiz2024", code: "WEAK_PASSWORD", message: mine},
		{pw: "whatsapp123", code: "WEAK_PASSWORD", message: mine},

		// Scored below 3 by zxcvbn, with its reason.
		{pw: "kjhgfdsazxcv", code: "WEAK_PASSWORD", message: "it is a keyboard pattern. Short keyboard patterns are easy to guess."},
		{pw: "hijklmnopqrs", code: "WEAK_PASSWORD", message: "it is a sequence. Sequences like abc or 6543 are easy to guess."},
		{pw: "9876543210zyx", code: "WEAK_PASSWORD", message: "its longest part is a sequence."},
		{pw: "drowssapdrowssap", code: "WEAK_PASSWORD", message: "it is a repetition."},
		{pw: "11/03/1987xyz", code: "WEAK_PASSWORD", message: "its longest part is a date. Dates are often easy to guess."},
		{pw: "inconsequential", code: "WEAK_PASSWORD", message: "it is a common word. A word by itself is easy to guess."},
		{pw: "jenniferlopez", code: "WEAK_PASSWORD", message: "its longest part is a common name."},
		{pw: "translator", code: "WEAK_PASSWORD", message: "it is a common password. It is a very common one."},
		{pw: "zxcvbnmasdf", code: "WEAK_PASSWORD", message: "similar to a commonly used password"},
	}
	for _, tc := range tests {
		t.Run(tc.pw, func(t *testing.T) {
			t.Parallel()
			err := identity.CheckPassword("password", tc.pw, "ada.lovelace@example.com", "Ada Lovelace", "Shop")
			if tc.code == "" {
				require.NoError(t, err)
				return
			}
			fe := fault.Invalids(err)
			require.Len(t, fe, 1, "%v", err)
			require.Equal(t, tc.code, fe[0].ErrorCode(), err.Error())
			require.Equal(t, []string{"password"}, fe[0].Field)
			require.Contains(t, fe[0].Message, tc.message)
			require.True(t, strings.HasSuffix(fe[0].Message, "."), "a full sentence: %q", fe[0].Message)
		})
	}
}

// The user's name and workspace name count only for that user: the same password is fine for
// someone else.
func TestCheckPasswordUserInputs(t *testing.T) {
	t.Parallel()
	require.Error(t, identity.CheckPassword("password", "shop lovelace ada", "ada@example.com", "Ada Lovelace", "Shop"))
	require.NoError(t, identity.CheckPassword("password", "shop lovelace ada", "bob@example.com", "Bob", "Bakery"))

	_, err := identity.DecideSignUp(identity.SignUpInput{Name: "Ada Lovelace", Email: "ada@example.com", Password: "shop lovelace ada", WorkspaceName: "Shop"})
	require.Equal(t, "WEAK_PASSWORD", fault.Invalids(err)[0].ErrorCode(), "sign-up passes the name and workspace name")
	_, err = identity.DecideSignUp(identity.SignUpInput{Name: "Bob", Email: "bob@example.com", Password: "shop lovelace ada", WorkspaceName: "Bakery"})
	require.NoError(t, err)
}

// The embedded list is the NCSC's, whole: its first lines, its length, and that its lookup
// folds case.
func TestCommonPasswordsList(t *testing.T) {
	t.Parallel()
	lines := strings.Split(strings.TrimSuffix(identity.NCSC100k, "\n"), "\n")
	require.Equal(t, []string{"123456", "123456789", "qwerty", "password"}, lines[:4])
	require.Greater(t, len(lines), 99_000)
	require.True(t, slices.IsSorted(identity.CommonPasswords()))
	for _, pw := range []string{"password", "qwerty123456", "letmein", "1qaz2wsx3edc", "iloveyou12"} {
		require.True(t, identity.IsCommonPassword(pw), pw)
	}
	require.False(t, identity.IsCommonPassword("correct horse battery staple"))
	require.False(t, identity.IsCommonPassword("Password"), "the lookup takes a lower-cased password")
}

// BenchmarkCommonPasswords measures the chosen sorted slice against a map of the same lines
// (the baseline): the heap each keeps (B/list) and the time of a lookup that misses.
func BenchmarkCommonPasswords(b *testing.B) {
	build := map[string]func() any{
		"sorted-slice": func() any {
			lines := strings.Split(identity.NCSC100k, "\n")
			out := make([]string, 0, len(lines))
			for _, l := range lines {
				if l = strings.ToLower(l); utf8.RuneCountInString(l) >= 4 {
					out = append(out, l)
				}
			}
			slices.Sort(out)
			return slices.Compact(out)
		},
		"map-baseline": func() any {
			lines := strings.Split(identity.NCSC100k, "\n")
			out := make(map[string]struct{}, len(lines))
			for _, l := range lines {
				if l = strings.ToLower(l); utf8.RuneCountInString(l) >= 4 {
					out[l] = struct{}{}
				}
			}
			return out
		},
	}
	for _, name := range []string{"map-baseline", "sorted-slice"} {
		b.Run(name+"/build", func(b *testing.B) {
			var kept uint64
			for b.Loop() {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				list := build[name]()
				runtime.GC()
				runtime.ReadMemStats(&after)
				kept = after.HeapAlloc - before.HeapAlloc
				runtime.KeepAlive(list)
			}
			b.ReportMetric(float64(kept), "B/list")
		})
	}
	const miss = "vt9#qlm2!xrw8@pz"
	b.Run("map-baseline/lookup", func(b *testing.B) {
		m := build["map-baseline"]().(map[string]struct{})
		for b.Loop() {
			_, _ = m[miss]
		}
	})
	b.Run("sorted-slice/lookup", func(b *testing.B) {
		identity.IsCommonPassword(miss) // builds the list once
		for b.Loop() {
			identity.IsCommonPassword(miss)
		}
	})
}

// BenchmarkCheckPassword is the whole check of a strong password, zxcvbn included, and of the
// longest one allowed (zxcvbn reads its first 100 characters).
func BenchmarkCheckPassword(b *testing.B) {
	for name, pw := range map[string]string{
		"16-random":  "vT9#qLm2!xRw8@pZ",
		"passphrase": "correct horse battery staple",
		"256-repeat": strings.Repeat("19870312", 32),
	} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				_ = identity.CheckPassword("password", pw, "ada@example.com", "Ada Lovelace", "Shop")
			}
		})
	}
}
