package identity

import (
	"maps"
	"net/mail"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"
	"golang.org/x/text/secure/precis"
	"golang.org/x/text/unicode/norm"

	"github.com/mydigibiz/digibiz/domain/fault"
)

// MaxEmailLength is the longest address accepted, in bytes (RFC 5321's path limit less the
// angle brackets).
const MaxEmailLength = 254

// NormalizeEmail validates an email address and returns its canonical form, the form that is
// unique per user (accounts are keyed by a blind index of it).
//
// A plain-ASCII address is trimmed and lower-cased, as it always was. An address with other
// characters must look like exactly one mailbox:
//   - invisible and format characters (zero-width spaces and joiners, soft hyphens, bidi
//     controls, byte-order marks) and spaces other than ASCII's are refused;
//   - the local part, and each label of the domain, may not mix alphabets (Latin with Cyrillic
//     or Greek, say): only the mixes of Unicode's "highly restrictive" level (UTS #39) are
//     allowed, which are Latin with Han and Japanese kana, with Han and Bopomofo, or with Han
//     and Hangul;
//   - characters that stand for others (full-width letters, the Kelvin and Ohm signs,
//     ligatures, mathematical letters: whatever NFKC would change) are refused rather than
//     mapped, so "\u212Aate@example.com" is not taken as kate@example.com; decomposed accents
//     are composed (NFC), since "e\u0301" and "é" are the same text;
//   - the local part must pass PRECIS's UsernameCasePreserved profile (RFC 8265): letters,
//     digits and ASCII's printable characters, no symbols or emoji; its ASCII letters are
//     lower-cased and other letters keep their case, because full Unicode lower-casing maps
//     distinct letters together (U+0130 "İ" onto "i");
//   - a domain with non-ASCII characters or an "xn--" label goes through IDNA (UTS #46
//     lookup, non-transitional, with label validation, STD3 rules, the bidi rule and DNS
//     lengths) and is kept in its lower-case Unicode form: "BÜCHER.de" and
//     "xn--bcher-kva.de" both give "bücher.de". A plain-ASCII domain without "xn--" is only
//     lower-cased, as before.
func NormalizeEmail(field, s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", fault.InvalidField(field, "REQUIRED", "Email is required.")
	}
	if len(s) > MaxEmailLength {
		return "", fault.InvalidField(field, "TOO_LONG", "Email must be at most %d characters.", MaxEmailLength)
	}
	invalid := func() error {
		return fault.InvalidField(field, "INVALID_EMAIL", "%q is not a valid email address.", s)
	}
	if !utf8.ValidString(s) {
		return "", invalid()
	}
	if err := checkVisible(field, s); err != nil {
		return "", err
	}
	addr, err := mail.ParseAddress(s)
	if err != nil || addr.Address != s || addr.Name != "" {
		return "", invalid()
	}
	at := strings.LastIndex(s, "@")
	if at < 1 || !strings.Contains(s[at+1:], ".") {
		return "", invalid()
	}
	local, domain := s[:at], s[at+1:]
	if isASCII(s) && !hasALabel(domain) {
		return strings.ToLower(s), nil
	}
	plainForm := func() error {
		return fault.InvalidField(field, "INVALID_EMAIL",
			"%q contains characters that stand for other characters (such as full-width letters or the Kelvin sign): please type the address in its plain form.", s)
	}
	if !compatibilityStable(s) {
		return "", plainForm()
	}

	local = norm.NFC.String(local)
	if !compatibilityStable(local) {
		return "", plainForm()
	}
	if !singleScript(local) {
		return "", fault.InvalidField(field, "INVALID_EMAIL",
			"%q mixes alphabets (such as Latin and Cyrillic letters) in the part before the @, as look-alike addresses do.", s)
	}
	mapped, err := precis.UsernameCasePreserved.String(local)
	if err != nil {
		return "", fault.InvalidField(field, "INVALID_EMAIL",
			"%q contains a character that an email address cannot hold, such as a symbol or an emoji.", s)
	}
	if mapped != local {
		return "", plainForm()
	}
	local = lowerASCII(local)

	if isASCII(domain) && !hasALabel(domain) {
		domain = strings.ToLower(domain)
	} else {
		ascii, err := emailDomains.ToASCII(domain)
		if err != nil {
			return "", fault.InvalidField(field, "INVALID_EMAIL", "%q does not have a valid internet domain name after the @.", s)
		}
		uni, err := emailDomains.ToUnicode(ascii)
		if err != nil {
			return "", fault.InvalidField(field, "INVALID_EMAIL", "%q does not have a valid internet domain name after the @.", s)
		}
		// UTS #46 maps some dots (U+3002 IDEOGRAPHIC FULL STOP) onto ".": a domain must be
		// written with the dots it has.
		if strings.Count(uni, ".") != strings.Count(domain, ".") {
			return "", plainForm()
		}
		// An A-label may hide what the rules above refuse in a typed domain.
		if err := checkVisible(field, uni); err != nil {
			return "", err
		}
		if !compatibilityStable(uni) {
			return "", plainForm()
		}
		for _, label := range strings.Split(uni, ".") {
			if !singleScript(label) {
				return "", fault.InvalidField(field, "INVALID_EMAIL",
					"%q mixes alphabets (such as Latin and Cyrillic letters) within a part of its domain name, as look-alike addresses do.", s)
			}
		}
		domain = uni
	}
	out := local + "@" + domain
	if len(out) > MaxEmailLength {
		return "", fault.InvalidField(field, "TOO_LONG", "Email must be at most %d characters.", MaxEmailLength)
	}
	return out, nil
}

// emailDomains is IDNA's lookup profile (UTS #46 mapping, RFC 5891 label validation with the
// hyphen and joiner rules, STD3 ASCII rules, the bidi rule), non-transitional so that "ß"
// stays "ß", and with DNS lengths checked.
var emailDomains = idna.New(
	idna.MapForLookup(),
	idna.BidiRule(),
	idna.Transitional(false),
	idna.VerifyDNSLength(true),
)

// checkVisible refuses invisible characters (format characters and the other default
// ignorables: zero-width spaces and joiners, soft hyphens, bidi controls, byte-order marks,
// variation selectors, Hangul fillers), and control characters and spaces beyond ASCII's
// (ASCII's are left to the address parser, as before).
func checkVisible(field, s string) error {
	for _, r := range s {
		switch {
		case r < utf8.RuneSelf:
		case isInvisible(r):
			return fault.InvalidField(field, "INVALID_EMAIL",
				"%q contains an invisible character (U+%04X): please type the address again without it.", s, r)
		case unicode.IsControl(r):
			return fault.InvalidField(field, "INVALID_EMAIL", "%q contains a control character.", s)
		case unicode.IsSpace(r) || unicode.In(r, unicode.Zs, unicode.Zl, unicode.Zp):
			return fault.InvalidField(field, "INVALID_EMAIL", "%q contains a space; an email address has none.", s)
		}
	}
	return nil
}

// isInvisible reports whether r is a format character or a default-ignorable code point
// (Unicode's DerivedCoreProperties: Cf, Other_Default_Ignorable_Code_Point and the variation
// selectors).
func isInvisible(r rune) bool {
	return unicode.In(r, unicode.Cf, unicode.Other_Default_Ignorable_Code_Point, unicode.Variation_Selector)
}

// compatibilityStable reports whether every character of s is its own NFKC form, so none
// stands for another (full-width "ａ" for "a", the Kelvin sign for "K", "ﬁ" for "fi").
func compatibilityStable(s string) bool {
	var buf [utf8.UTFMax]byte
	for _, r := range s {
		if r < utf8.RuneSelf {
			continue
		}
		b := buf[:utf8.EncodeRune(buf[:], r)]
		if !norm.NFKC.IsNormal(b) {
			return false
		}
	}
	return true
}

// singleScript reports whether the letters of s come from one script, ignoring Common and
// Inherited characters (digits, punctuation, combining marks), or from one of the mixes that
// UTS #39's "highly restrictive" level allows: Latin with Han, Hiragana and Katakana; Latin with
// Han and Bopomofo; Latin with Han and Hangul.
func singleScript(s string) bool {
	var seen []string
	for _, r := range s {
		sc := scriptOf(r)
		if sc == "" || sc == "Common" || sc == "Inherited" {
			continue
		}
		if !slices.Contains(seen, sc) {
			seen = append(seen, sc)
		}
	}
	if len(seen) <= 1 {
		return true
	}
	for _, allowed := range allowedScriptMixes {
		ok := true
		for _, sc := range seen {
			if !slices.Contains(allowed, sc) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

var allowedScriptMixes = [][]string{
	{"Latin", "Han", "Hiragana", "Katakana"},
	{"Latin", "Han", "Bopomofo"},
	{"Latin", "Han", "Hangul"},
}

// scriptNames are Unicode's scripts, in a fixed order.
var scriptNames = func() []string {
	return slices.Sorted(maps.Keys(unicode.Scripts))
}()

// scriptOf returns the name of r's script, "" if it has none (unassigned).
func scriptOf(r rune) string {
	if r < utf8.RuneSelf {
		if 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' {
			return "Latin"
		}
		return "Common"
	}
	for _, name := range scriptNames {
		if unicode.Is(unicode.Scripts[name], r) {
			return name
		}
	}
	return ""
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// hasALabel reports whether a domain has a label in IDNA's ASCII form ("xn--…").
func hasALabel(domain string) bool {
	for _, label := range strings.Split(domain, ".") {
		if len(label) >= 4 && strings.EqualFold(label[:4], "xn--") {
			return true
		}
	}
	return false
}

// lowerASCII lower-cases ASCII letters only.
func lowerASCII(s string) string {
	return strings.Map(func(r rune) rune {
		if 'A' <= r && r <= 'Z' {
			return r + ('a' - 'A')
		}
		return r
	}, s)
}
