package identity_test

import (
	"strings"
	"testing"
	"unicode"

	"github.com/stretchr/testify/require"

	"github.com/mydigibiz/digibiz/domain/fault"
	"github.com/mydigibiz/digibiz/domain/identity"
)

// Each address is accepted with this canonical form, or refused with this code and a message
// holding this text.
func TestNormalizeEmail(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
		code, message  string
	}{
		// Plain ASCII canonicalises as it always did: trimmed and lower-cased.
		{name: "ASCII is lower-cased", in: " Ada@Example.COM ", want: "ada@example.com"},
		{name: "ASCII punctuation of the local part", in: "A.B+tag_x-y!#$%&'*/=?^`{|}~@example.com", want: "a.b+tag_x-y!#$%&'*/=?^`{|}~@example.com"},
		{name: "ASCII domain outside DNS's letters stays as before", in: "ops@mail_relay.example.com", want: "ops@mail_relay.example.com"},
		{name: "ASCII domain with a double hyphen stays as before", in: "a@ab--cd.example.com", want: "a@ab--cd.example.com"},
		{name: "empty", in: "  ", code: "REQUIRED", message: "Email is required."},
		{name: "too long", in: strings.Repeat("a", 250) + "@x.io", code: "TOO_LONG", message: "at most 254"},
		{name: "no at", in: "ada.example.com", code: "INVALID_EMAIL", message: "is not a valid email address"},
		{name: "no dot in the domain", in: "ada@localhost", code: "INVALID_EMAIL", message: "is not a valid email address"},
		{name: "display name", in: "Ada <ada@example.com>", code: "INVALID_EMAIL", message: "is not a valid email address"},
		{name: "invalid UTF-8", in: "ad\xffa@example.com", code: "INVALID_EMAIL", message: "is not a valid email address"},

		// Letters of one script are welcome; ASCII letters are lower-cased, others keep their case.
		{name: "accented Latin", in: "José@Example.com", want: "josé@example.com"},
		{name: "Cyrillic local part on a Latin domain", in: "Иван@example.com", want: "Иван@example.com"},
		{name: "Greek", in: "αλέξης@παράδειγμα.gr", want: "αλέξης@παράδειγμα.gr"},
		{name: "Japanese mixes kanji, kana and Latin", in: "山田たろうABC@example.jp", want: "山田たろうabc@example.jp"},
		{name: "dotted capital I keeps its case", in: "ALİCE@example.com", want: "alİce@example.com"},
		{name: "decomposed accent is composed", in: "jose\u0301@example.com", want: "josé@example.com"},

		// Domains go through IDNA and keep their lower-case Unicode form.
		{name: "Unicode domain is lower-cased", in: "kunde@BÜCHER.de", want: "kunde@bücher.de"},
		{name: "A-label domain is decoded", in: "kunde@xn--bcher-kva.de", want: "kunde@bücher.de"},
		{name: "upper-case A-label domain is decoded", in: "Kunde@XN--BCHER-KVA.DE", want: "kunde@bücher.de"},
		{name: "sharp s is kept (non-transitional)", in: "a@Straße.de", want: "a@straße.de"},
		{name: "capital sharp s maps as UTS #46 says", in: "a@STRAẞE.de", want: "a@strasse.de"},
		{name: "invalid A-label", in: "a@xn--a.com", code: "INVALID_EMAIL", message: "valid internet domain name"},
		{name: "Unicode domain with a leading hyphen", in: "a@-bücher.de", code: "INVALID_EMAIL", message: "valid internet domain name"},
		{name: "Unicode domain with an underscore", in: "a@bü_cher.de", code: "INVALID_EMAIL", message: "valid internet domain name"},
		{name: "Unicode label longer than DNS allows", in: "a@ü" + strings.Repeat("x", 70) + ".de", code: "INVALID_EMAIL", message: "valid internet domain name"},
		{name: "ideographic full stop", in: "a@例え。example.jp", code: "INVALID_EMAIL", message: "plain form"},

		// Invisible characters, anywhere.
		{name: "zero-width space in the domain", in: "ada@exam\u200bple.com", code: "INVALID_EMAIL", message: "invisible character (U+200B)"},
		{name: "zero-width non-joiner", in: "a\u200cda@example.com", code: "INVALID_EMAIL", message: "invisible character (U+200C)"},
		{name: "zero-width joiner", in: "ada@example.c\u200dom", code: "INVALID_EMAIL", message: "invisible character (U+200D)"},
		{name: "word joiner", in: "ad\u2060a@example.com", code: "INVALID_EMAIL", message: "invisible character (U+2060)"},
		{name: "byte-order mark", in: "\ufeffada@example.com", code: "INVALID_EMAIL", message: "invisible character (U+FEFF)"},
		{name: "soft hyphen", in: "ad\u00ada@example.com", code: "INVALID_EMAIL", message: "invisible character (U+00AD)"},
		{name: "right-to-left override", in: "ada\u202e@example.com", code: "INVALID_EMAIL", message: "invisible character (U+202E)"},
		{name: "left-to-right mark", in: "ada@example.com\u200e", code: "INVALID_EMAIL", message: "invisible character (U+200E)"},
		{name: "variation selector", in: "ada\ufe0f@example.com", code: "INVALID_EMAIL", message: "invisible character (U+FE0F)"},
		{name: "Hangul filler", in: "ada\u3164@example.com", code: "INVALID_EMAIL", message: "invisible character (U+3164)"},
		{name: "invisible character hidden in an A-label", in: "ada@xn--example-3z6c.com", code: "INVALID_EMAIL"},
		{name: "no-break space", in: "ada\u00a0lovelace@example.com", code: "INVALID_EMAIL", message: "contains a space"},

		// Mixed alphabets within the local part or within one label.
		{name: "Cyrillic e among Latin letters", in: "alic\u0435@example.com", code: "INVALID_EMAIL", message: "mixes alphabets"},
		{name: "Greek omicron among Latin letters", in: "b\u03bfb@example.com", code: "INVALID_EMAIL", message: "mixes alphabets"},
		{name: "Cyrillic a in a domain label", in: "ada@ex\u0430mple.com", code: "INVALID_EMAIL", message: "mixes alphabets"},
		{name: "Cyrillic a in a domain label written as an A-label", in: "ada@xn--exmple-4nf.com", code: "INVALID_EMAIL", message: "mixes alphabets"},
		{name: "scripts may differ from label to label", in: "ada@пример.example.com", want: "ada@пример.example.com"},

		// Characters that stand for others are refused, not mapped onto another mailbox.
		{name: "full-width a", in: "\uff41da@example.com", code: "INVALID_EMAIL", message: "plain form"},
		{name: "full-width letter in the domain", in: "ada@\uff45xample.com", code: "INVALID_EMAIL", message: "plain form"},
		{name: "Kelvin sign", in: "\u212Aate@x.com", code: "INVALID_EMAIL", message: "plain form"},
		{name: "Ohm sign", in: "\u2126mega@x.com", code: "INVALID_EMAIL", message: "plain form"},
		{name: "ligature", in: "\ufb01nn@example.com", code: "INVALID_EMAIL", message: "plain form"},
		{name: "mathematical bold letter", in: "\U0001d41Bob@example.com", code: "INVALID_EMAIL", message: "plain form"},
		{name: "Greek question mark", in: "a\u037eb@example.com", code: "INVALID_EMAIL", message: "plain form"},

		// PRECIS's identifier class: no symbols or emoji.
		{name: "emoji", in: "ada\U0001F600@example.com", code: "INVALID_EMAIL", message: "symbol or an emoji"},
		{name: "symbol", in: "ada\u2665@example.com", code: "INVALID_EMAIL", message: "symbol or an emoji"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := identity.NormalizeEmail("email", tc.in)
			if tc.code == "" {
				require.NoError(t, err)
				require.Equal(t, tc.want, got)
				again, err := identity.NormalizeEmail("email", got)
				require.NoError(t, err, "the canonical form is accepted")
				require.Equal(t, got, again, "the canonical form is its own")
				return
			}
			require.Error(t, err, "got %q", got)
			fe := fault.Invalids(err)
			require.Len(t, fe, 1)
			require.Equal(t, tc.code, fe[0].ErrorCode(), err.Error())
			require.Equal(t, []string{"email"}, fe[0].Field)
			require.Contains(t, fe[0].Message, tc.message)
			require.True(t, strings.HasSuffix(fe[0].Message, "."), "a full sentence: %q", fe[0].Message)
		})
	}
}

// The attacks of the hardening review: each look-alike either is refused or is the same
// account as the plain address; none is a second account.
func TestNormalizeEmailLookAlikes(t *testing.T) {
	t.Parallel()
	plain, err := identity.NormalizeEmail("email", "alice@example.com")
	require.NoError(t, err)
	for _, in := range []string{
		"alic\u0435@example.com",       // Cyrillic е
		"\uff41lice@example.com",       // full-width ａ
		"alice@exa\u200bmple.com",      // zero-width space
		"\u212Aalice@example.com",      // Kelvin sign
		"alice@\uff45xample.com",       // full-width ｅ in the domain
		"alice@example\uff0ecom",       // full-width full stop
		"alice\u00ad@example.com",      // soft hyphen
		"ali\u0441e@example.com",       // Cyrillic с
		"alice@xn--exmple-4nf.com",     // Cyrillic а hidden in an A-label
		"alice@example.com\ufe0f",      // variation selector
		"\u202ealice@example.com",      // bidi override
		"alic\u0065\u0301@example.com", // a different letter (é), not a look-alike
	} {
		got, err := identity.NormalizeEmail("email", in)
		if err == nil {
			require.NotEqual(t, plain, got)
			// The only accepted one is a different, visibly different address.
			require.Equal(t, "alicé@example.com", got, "%q", in)
			continue
		}
		require.Equal(t, "INVALID_EMAIL", fault.Invalids(err)[0].ErrorCode(), "%q: %v", in, err)
	}
	got, err := identity.NormalizeEmail("email", "ALİCE@example.com")
	require.NoError(t, err)
	require.NotEqual(t, plain, got, "U+0130 is not lower-cased onto i")
}

// FuzzNormalizeEmail: NormalizeEmail never panics; an accepted address's canonical form is
// itself accepted and canonical (so a blind index of it is stable) and holds no invisible
// character.
func FuzzNormalizeEmail(f *testing.F) {
	for _, seed := range []string{
		"ada@example.com", " Ada@Example.COM ", "kunde@BÜCHER.de", "kunde@xn--bcher-kva.de",
		"alic\u0435@example.com", "\uff41da@example.com", "ada@exam\u200bple.com", "ALİCE@example.com",
		"\u212Aate@x.com", "jose\u0301@example.com", "山田たろう@例え.jp", "a@STRAẞE.de", "a@例え。jp",
		"\"quoted\"@example.com", "a@[127.0.0.1]", "a@xn--a.com", "ﾀﾛｳ@example.jp",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := identity.NormalizeEmail("email", in)
		if err != nil {
			if len(fault.Invalids(err)) != 1 {
				t.Fatalf("%q: not one invalid field: %v", in, err)
			}
			return
		}
		for _, r := range got {
			if unicode.Is(unicode.Cf, r) {
				t.Fatalf("%q gave %q, with the format character U+%04X", in, got, r)
			}
		}
		again, err := identity.NormalizeEmail("email", got)
		if err != nil {
			t.Fatalf("%q gave %q, which is refused: %v", in, got, err)
		}
		if again != got {
			t.Fatalf("%q gave %q, which gives %q", in, got, again)
		}
	})
}
