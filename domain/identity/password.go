package identity

import (
	_ "embed"
	"math"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/trustelem/zxcvbn"
	"github.com/trustelem/zxcvbn/match"

	"github.com/mydigibiz/digibiz/domain/fault"
)

// MinPasswordLength follows NIST SP 800-63B's advice for memorised secrets chosen by users,
// raised from 8 to 10.
const MinPasswordLength = 10

// MaxPasswordLength bounds the work of hashing.
const MaxPasswordLength = 256

// MinPasswordScore is the least zxcvbn score (0 to 4) a password needs: 3 is "safely
// unguessable: moderate protection from offline slow-hash scenario", fewer than 10^10 guesses.
const MinPasswordScore = 3

// passwordEstimateRunes bounds the work of the strength estimator, whose matching grows faster
// than the length: a password whose first 100 characters are strong is strong.
const passwordEstimateRunes = 100

// serviceWords are words of this service that make a password easy to guess here.
var serviceWords = []string{"mydigibiz", "digibiz", "whatsapp"}

// CheckPassword rejects passwords that are too short or too long, made of fewer than four
// different characters, among the 100,000 most common passwords (also once trailing digits and
// symbols are taken off, as in "Password1!"), containing the user's email name, or that zxcvbn
// (Dropbox's strength estimator) scores below MinPasswordScore. userInputs are what else the
// user gave (their name, the workspace name): a password made of them is easy to guess for
// whoever knows them. Refusals have the code WEAK_PASSWORD (TOO_LONG past the maximum) and a
// message giving the reason.
func CheckPassword(field, password, email string, userInputs ...string) error {
	n := utf8.RuneCountInString(password)
	if n < MinPasswordLength {
		return fault.InvalidField(field, "WEAK_PASSWORD", "Password must be at least %d characters.", MinPasswordLength)
	}
	if n > MaxPasswordLength {
		return fault.InvalidField(field, "TOO_LONG", "Password must be at most %d characters.", MaxPasswordLength)
	}
	distinct := map[rune]bool{}
	for _, r := range password {
		distinct[r] = true
	}
	if len(distinct) < 4 {
		return fault.InvalidField(field, "WEAK_PASSWORD", "Password is too simple: use more different characters.")
	}
	lower := strings.ToLower(password)
	if isCommonPassword(lower) {
		return fault.InvalidField(field, "WEAK_PASSWORD",
			"Password is one of the 100,000 most common passwords: choose another, a few uncommon words make a strong one.")
	}
	if base := strings.TrimRightFunc(lower, notLetter); base != lower && utf8.RuneCountInString(base) >= 4 && isCommonPassword(base) {
		return fault.InvalidField(field, "WEAK_PASSWORD",
			"Password is one of the 100,000 most common passwords with only digits or symbols added at the end, which is what attackers try first.")
	}
	local, _, _ := strings.Cut(strings.ToLower(email), "@")
	if len(local) >= 4 && strings.Contains(lower, local) {
		return fault.InvalidField(field, "WEAK_PASSWORD", "Password must not contain your email address.")
	}
	inputs := passwordUserInputs(local, userInputs)
	if madeOfUserInputs(lower, inputs) {
		return fault.InvalidField(field, "WEAK_PASSWORD",
			"Password is made of your name, your email address, the workspace name or this service's name, with little else: whoever knows you can guess it.")
	}
	estimated := password
	if n > passwordEstimateRunes {
		estimated = string([]rune(password)[:passwordEstimateRunes])
	}
	if res := zxcvbn.PasswordStrength(estimated, inputs); res.Score < MinPasswordScore {
		return fault.InvalidField(field, "WEAK_PASSWORD", "%s", weakPasswordMessage(res.Sequence))
	}
	return nil
}

func notLetter(r rune) bool { return !unicode.IsLetter(r) }

// passwordUserInputs are the words zxcvbn is to treat as known to an attacker: the email's
// local part and the other inputs, each as given, with its words run together ("adalovelace")
// and word by word, and the service's own words.
func passwordUserInputs(local string, others []string) []string {
	inputs := slices.Clone(serviceWords)
	add := func(s string) {
		s = strings.ToLower(strings.TrimSpace(s))
		if utf8.RuneCountInString(s) >= 3 && !slices.Contains(inputs, s) {
			inputs = append(inputs, s)
		}
	}
	for _, s := range append([]string{local}, others...) {
		words := strings.FieldsFunc(s, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
		add(s)
		add(strings.Join(words, ""))
		for _, w := range words {
			add(w)
		}
	}
	return inputs
}

// madeOfUserInputs reports whether taking the user's inputs out of the lower-cased password
// leaves fewer than four letters: zxcvbn's estimate grows with the number of parts, so it
// rates "shop lovelace ada" strong for Ada Lovelace of the workspace Shop.
func madeOfUserInputs(lower string, inputs []string) bool {
	inputs = slices.Clone(inputs)
	slices.SortStableFunc(inputs, func(a, b string) int { return len(b) - len(a) })
	rest := lower
	for _, in := range inputs {
		rest = strings.ReplaceAll(rest, in, " ")
	}
	if rest == lower {
		return false
	}
	letters := 0
	for _, r := range rest {
		if unicode.IsLetter(r) {
			letters++
		}
	}
	return letters < 4
}

// weakPasswordMessage explains a low score from the longest part zxcvbn found, after zxcvbn's
// own feedback (feedback.coffee, which the Go port lacks).
func weakPasswordMessage(seq []*match.Match) string {
	const more = " Add another word or two; uncommon words are better."
	if len(seq) == 0 {
		return "Password is too easy to guess." + more
	}
	longest := seq[0]
	for _, m := range seq[1:] {
		if utf8.RuneCountInString(m.Token) > utf8.RuneCountInString(longest.Token) {
			longest = m
		}
	}
	sole := len(seq) == 1
	what, why := describeMatch(longest, sole)
	if what == "" {
		return "Password is too easy to guess." + more
	}
	subject := "it is"
	if !sole {
		subject = "its longest part is"
	}
	msg := "Password is too easy to guess: " + subject + " " + what + "."
	if why != "" {
		msg += " " + why
	}
	if longest.Pattern == "dictionary" {
		token := []rune(longest.Token)
		switch {
		case longest.L33t:
			msg += " Predictable substitutions such as '@' for 'a' do not help much."
		case longest.Reversed && len(token) >= 4:
			msg += " Words written backwards are hardly harder to guess."
		case len(token) > 1 && unicode.IsUpper(token[0]) && strings.ToLower(string(token[1:])) == string(token[1:]):
			msg += " A capital first letter does not help much."
		case strings.ToUpper(longest.Token) == longest.Token && strings.ToLower(longest.Token) != longest.Token:
			msg += " All capitals are almost as easy to guess as all small letters."
		}
	}
	return msg + more
}

// describeMatch names what a part of a password is, and why that is weak (zxcvbn's warning).
func describeMatch(m *match.Match, sole bool) (what, why string) {
	switch m.Pattern {
	case "dictionary":
		switch m.DictionaryName {
		case "passwords":
			switch {
			case sole && !m.L33t && !m.Reversed && m.Rank <= 10:
				return "a common password", "It is among the 10 most common ones."
			case sole && !m.L33t && !m.Reversed && m.Rank <= 100:
				return "a common password", "It is among the 100 most common ones."
			case sole && !m.L33t && !m.Reversed:
				return "a common password", "It is a very common one."
			case m.Guesses > 0 && math.Log10(m.Guesses) <= 4:
				return "similar to a commonly used password", ""
			}
			return "a common password", ""
		case "english_wikipedia", "us_tv_and_film":
			if sole {
				return "a common word", "A word by itself is easy to guess."
			}
			return "a common word", ""
		case "surnames", "male_names", "female_names":
			if sole {
				return "a common name", "Names and surnames by themselves are easy to guess."
			}
			return "a common name", "Common names and surnames are easy to guess."
		case "user_inputs":
			return "made of your name, your email address, the workspace name or this service's name", "Whoever knows you can guess it."
		}
	case "spatial":
		if m.Turns == 1 {
			return "a keyboard pattern", "Straight rows of keys are easy to guess."
		}
		return "a keyboard pattern", "Short keyboard patterns are easy to guess."
	case "repeat":
		if utf8.RuneCountInString(m.BaseToken) == 1 {
			return "a repetition", `Repeats like "aaa" are easy to guess.`
		}
		return "a repetition", `Repeats like "abcabcabc" are only slightly harder to guess than "abc".`
	case "sequence":
		return "a sequence", "Sequences like abc or 6543 are easy to guess."
	case "regex":
		if m.RegexName == "recent_year" {
			return "a recent year", "Recent years are easy to guess."
		}
	case "date":
		return "a date", "Dates are often easy to guess."
	}
	return "", ""
}

// ncsc100k is the UK NCSC's list of the 100,000 passwords most used in breaches (see
// passwords/README.md), one a line, most common first.
//
//go:embed passwords/ncsc-100k.txt
var ncsc100k string

// commonPasswords holds the list's lower-cased lines of four characters or more, sorted, for a
// binary search. It is built once, on first use (about 55 ms), and keeps about 1.6 MB of heap,
// its strings mostly pointing into the embedded text; a map of the same lines keeps about
// 3.5 MB for a lookup of 20 ns instead of 140 ns, a gain that does not matter next to hashing
// the password (see BenchmarkCommonPasswords).
var commonPasswords = sync.OnceValue(func() []string {
	lines := strings.Split(ncsc100k, "\n")
	out := make([]string, 0, len(lines))
	for _, line := range lines {
		line = strings.ToLower(strings.TrimSuffix(line, "\r"))
		if utf8.RuneCountInString(line) >= 4 {
			out = append(out, line)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
})

// isCommonPassword reports whether the lower-cased password s is on the list of the 100,000
// most common passwords (only its entries of four characters or more are kept).
func isCommonPassword(s string) bool {
	_, found := slices.BinarySearch(commonPasswords(), s)
	return found
}
