package contact

import (
	"errors"
	"strconv"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// Stable codes of a PhoneError. Clients and import reports key on them, so they never change;
// the human-readable Reason may.
const (
	PhoneCodeEmpty          = "EMPTY"
	PhoneCodeNoCountry      = "NO_COUNTRY"
	PhoneCodeInvalidCountry = "INVALID_COUNTRY"
	PhoneCodeTooShort       = "TOO_SHORT"
	PhoneCodeTooLong        = "TOO_LONG"
	PhoneCodeInvalidNumber  = "INVALID_NUMBER"
	PhoneCodeNotANumber     = "NOT_A_NUMBER"
)

// phoneMaxInput bounds the text handed to phonenumbers: longer input cannot be one phone
// number, and the library's regular expressions need not see it.
const phoneMaxInput = 250

// PhoneError says why a phone number was rejected. Imports show Reason next to the row and
// clients branch on Code.
type PhoneError struct {
	// Raw is the input as given.
	Raw string
	// Reason explains the rejection to a person.
	Reason string
	// Code is one of the PhoneCode constants.
	Code string
}

// Error deliberately leaves Raw out: error strings end up in logs, and a phone number is
// personal data that must stay erasable (it lives only in encrypted events).
func (e *PhoneError) Error() string {
	return "invalid phone number: " + e.Reason
}

// NormalizePhone turns a phone number as people write it into E.164 ("+4915112345678").
//
// Numbers without an international prefix are read in defaultCountry (ISO 3166-1 alpha-2,
// case-insensitive; may be empty when every number carries "+" or "00"). Accepted besides the
// usual national and international notations: "tel:" and "whatsapp:" prefixes, wa.me links and
// WhatsApp JIDs ("491511234567@s.whatsapp.net"). A digit string that is not valid as a
// national number of defaultCountry but is valid with a leading "+" ("4915112345678", as
// WhatsApp tools and spreadsheets that dropped the "+" write numbers) is read as
// international.
//
// An extension ("ext. 12", "x12", ";ext=12") is dropped: E.164 cannot carry one and WhatsApp
// reaches the line, not the extension, so the rest of the number is still the contact's
// reachable number.
//
// The result is the number itself, validated against the numbering plan of its region with
// phonenumbers.IsValidNumber; an error is always a *PhoneError.
func NormalizePhone(raw, defaultCountry string) (e164 string, err error) {
	fail := func(code, reason string) (string, error) {
		return "", &PhoneError{Raw: raw, Reason: reason, Code: code}
	}

	region := strings.ToUpper(strings.TrimSpace(defaultCountry))
	if region != "" && !phonenumbers.GetSupportedRegions()[region] {
		return fail(PhoneCodeInvalidCountry, "default country "+phoneQuoteShort(defaultCountry)+" is not a known country code")
	}

	s := strings.TrimSpace(raw)
	if s == "" {
		return fail(PhoneCodeEmpty, "no phone number given")
	}
	if len(s) > phoneMaxInput {
		return fail(PhoneCodeTooLong, "too long to be a phone number")
	}
	s, international := stripPhoneScheme(s)
	if s == "" {
		return fail(PhoneCodeEmpty, "no phone number given")
	}
	if international && !strings.HasPrefix(s, "+") {
		s = "+" + s
	}
	s = stripPhoneRemarks(s)

	num, perr := parsePhone(s, region)
	if perr == nil {
		if intl, ok := phoneLostPlus(s, region); ok && intl != num {
			return intl, nil
		}
		return num, nil
	}

	// Second chances for international numbers written without "+", tried only when the
	// first reading failed.
	if !strings.HasPrefix(s, "+") && !strings.HasPrefix(s, "\uff0b") {
		digits := phonenumbers.NormalizeDigitsOnly(s)
		if phoneOnlyPunctuated(s) {
			switch {
			case strings.HasPrefix(digits, "00") && len(digits) > 4:
				// "00" is the international prefix of most of the world; when the default
				// country dials out differently (011 in the US) the writer still meant it.
				// Its reading explains a failure better than a national one.
				num, err := parsePhone("+"+digits[2:], "")
				if err == nil {
					return num, nil
				}
				perr = err
			case region != "" && !strings.HasPrefix(digits, "0") && len(digits) >= 10:
				// Without a default country this would be a guess: a national number of one
				// country often reads as a valid number of another once prefixed with "+".
				if num, err := parsePhone("+"+digits, ""); err == nil {
					return num, nil
				}
			}
		}
	}
	perr.Raw = raw
	return "", perr
}

// phoneLostPlus reads s as an international number of region whose "+" a spreadsheet
// dropped ("4915112345678" for a German list). Such digits can also be a valid national number (in
// Germany the 0491 area code), yet people write national numbers with their trunk prefix
// ("0491 ..."), so digits that lack it but start with the country's calling code are taken
// as international when that reading is valid.
func phoneLostPlus(s, region string) (string, bool) {
	if region == "" || !phoneOnlyPunctuated(s) {
		return "", false
	}
	trunk := phonenumbers.GetNddPrefixForRegion(region, true)
	cc := strconv.Itoa(phonenumbers.GetCountryCodeForRegion(region))
	digits := phonenumbers.NormalizeDigitsOnly(s)
	if trunk == "" || strings.HasPrefix(digits, trunk) || !strings.HasPrefix(digits, cc) {
		return "", false
	}
	num, err := parsePhone("+"+digits, "")
	if err != nil {
		return "", false
	}
	return num, true
}

// parsePhone parses and validates one candidate reading of a number.
func parsePhone(s, region string) (string, *PhoneError) {
	// The shortcuts read the two commonest forms without the parser's regular expressions; what
	// they read must pass the parser's checks, and anything else ("+54 11 15 …", whose national
	// prefix the parser strips) goes to the parser.
	if num, ok := phoneFromInternational(s); ok {
		if e164, ok := phoneValidE164(num); ok {
			return e164, nil
		}
	} else if num, ok := phoneFromNational(s, region); ok {
		if e164, ok := phoneValidE164(num); ok {
			return e164, nil
		}
	}
	return parsePhoneFully(s, region)
}

// phoneValidE164 is the E.164 form of num when num passes every check parsePhoneFully makes.
func phoneValidE164(num *phonenumbers.PhoneNumber) (string, bool) {
	if phonenumbers.IsPossibleNumberWithReason(num) != phonenumbers.IS_POSSIBLE || !phonenumbers.IsValidNumber(num) {
		return "", false
	}
	e164 := phonenumbers.Format(num, phonenumbers.E164)
	return e164, len(e164) <= 16
}

// parsePhoneFully parses and validates one candidate reading of a number with the library's
// parser, and says why it is not a valid number when it is not.
func parsePhoneFully(s, region string) (string, *PhoneError) {
	e := func(code, reason string) (string, *PhoneError) {
		return "", &PhoneError{Reason: reason, Code: code}
	}
	num, err := phonenumbers.Parse(s, region)
	switch {
	case err == nil:
	case errors.Is(err, phonenumbers.ErrInvalidCountryCode):
		if region == "" && !strings.HasPrefix(s, "+") && !strings.HasPrefix(s, "\uff0b") {
			return e(PhoneCodeNoCountry, "no country code (+…) and no default country to read it in")
		}
		return e(PhoneCodeInvalidNumber, "unknown country calling code")
	case errors.Is(err, phonenumbers.ErrTooShortNSN), errors.Is(err, phonenumbers.ErrTooShortAfterIDD):
		return e(PhoneCodeTooShort, "too short to be a phone number")
	case errors.Is(err, phonenumbers.ErrNumTooLong):
		return e(PhoneCodeTooLong, "too long to be a phone number")
	case errors.Is(err, phonenumbers.ErrNotANumber):
		return e(PhoneCodeNotANumber, "not a phone number")
	default:
		return e(PhoneCodeNotANumber, "not a phone number")
	}

	if num.GetCountryCode() == 52 {
		// Checked before the length test, which the old Mexican forms fail.
		phoneFixMexicanMobile(num)
	}
	switch phonenumbers.IsPossibleNumberWithReason(num) {
	case phonenumbers.IS_POSSIBLE:
	case phonenumbers.TOO_SHORT:
		return e(PhoneCodeTooShort, "too short for "+phoneRegionName(num))
	case phonenumbers.IS_POSSIBLE_LOCAL_ONLY:
		return e(PhoneCodeTooShort, "too short for "+phoneRegionName(num)+": a local number needs its area code")
	case phonenumbers.TOO_LONG:
		return e(PhoneCodeTooLong, "too long for "+phoneRegionName(num))
	case phonenumbers.INVALID_COUNTRY_CODE:
		return e(PhoneCodeInvalidNumber, "unknown country calling code")
	default: // INVALID_LENGTH
		return e(PhoneCodeInvalidNumber, "wrong number of digits for "+phoneRegionName(num))
	}
	if !phonenumbers.IsValidNumber(num) {
		return e(PhoneCodeInvalidNumber, "not a valid number in "+phoneRegionName(num))
	}
	num.Extension = nil
	e164 := phonenumbers.Format(num, phonenumbers.E164)
	if len(e164) > 16 {
		// The metadata of some countries admits longer numbers than E.164's 15 digits;
		// WhatsApp and every carrier route only E.164.
		return e(PhoneCodeTooLong, "longer than the 15 digits an international number can have")
	}
	return e164, nil
}

// phoneFromInternational splits a plainly written international number ("+4915112345678",
// "+49 151 12345678") into calling code and national number without phonenumbers.Parse,
// whose extension and punctuation patterns cost more than the validation itself; imports
// normalise numbers by the hundred thousand. Anything less plain (parentheses, letters, a
// national number with leading zeros) reports false and takes the full parser.
func phoneFromInternational(s string) (*phonenumbers.PhoneNumber, bool) {
	if len(s) < 2 || s[0] != '+' {
		return nil, false
	}
	var digits [phonenumbers.MAX_LENGTH_FOR_NSN + phonenumbers.MAX_LENGTH_COUNTRY_CODE]byte
	d, ok := plainDigits(s[1:], digits[:])
	if !ok || len(d) == 0 || d[0] == '0' { // no calling code starts with 0
		return nil, false
	}
	// Calling codes are prefix-free: at most one of the first three prefixes is one.
	for l := 1; l <= phonenumbers.MAX_LENGTH_COUNTRY_CODE && l < len(d); l++ {
		cc, _ := strconv.Atoi(string(d[:l]))
		if phonenumbers.GetRegionCodeForCountryCode(cc) == "ZZ" {
			continue
		}
		nsn := d[l:]
		if nsn[0] == '0' || len(nsn) > phonenumbers.MAX_LENGTH_FOR_NSN {
			return nil, false // leading zeros are kept in fields the full parser sets
		}
		national, err := strconv.ParseUint(string(nsn), 10, 64)
		if err != nil {
			return nil, false
		}
		code := int32(cc)
		return &phonenumbers.PhoneNumber{CountryCode: &code, NationalNumber: &national}, true
	}
	return nil, false
}

// plainDigits copies the digits of s into buf when s holds nothing but ASCII digits and the
// separators space, "-", ".", "/", and they fit.
func plainDigits(s string, buf []byte) ([]byte, bool) {
	n := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			if n == len(buf) {
				return nil, false
			}
			buf[n] = c
			n++
		case c == ' ' || c == '-' || c == '.' || c == '/':
		default:
			return nil, false
		}
	}
	return buf[:n], true
}

// phoneFixMexicanMobile rewrites the mobile forms Mexico abolished in 2019 but address books
// and WhatsApp JIDs still carry: "+52 1" before the ten digits and the national "044"/"045"
// prefixes. It reports whether it changed num.
func phoneFixMexicanMobile(num *phonenumbers.PhoneNumber) bool {
	nsn := phonenumbers.GetNationalSignificantNumber(num)
	var ten string
	switch {
	case len(nsn) == 11 && nsn[0] == '1':
		ten = nsn[1:]
	case len(nsn) == 13 && (strings.HasPrefix(nsn, "044") || strings.HasPrefix(nsn, "045")):
		ten = nsn[3:]
	case len(nsn) == 12 && (strings.HasPrefix(nsn, "44") || strings.HasPrefix(nsn, "45")):
		ten = nsn[2:]
	default:
		return false
	}
	n, err := strconv.ParseUint(ten, 10, 64)
	if err != nil {
		return false
	}
	fixed := &phonenumbers.PhoneNumber{CountryCode: num.CountryCode, NationalNumber: &n}
	if !phonenumbers.IsValidNumber(fixed) {
		return false
	}
	num.NationalNumber = &n
	num.ItalianLeadingZero = nil
	num.NumberOfLeadingZeros = nil
	return true
}

// stripPhoneRemarks removes parenthesised words people add after a number ("(private)",
// "(WhatsApp only)"); left in, the library reads them as part of an overlong number.
// Parentheses holding digits are kept: "(030)" and "(0)" are part of the notation.
func stripPhoneRemarks(s string) string {
	for {
		open := strings.IndexByte(s, '(')
		if open < 0 {
			return s
		}
		end := strings.IndexByte(s[open:], ')')
		if end < 0 {
			return s
		}
		inner := s[open+1 : open+end]
		if strings.IndexFunc(inner, func(r rune) bool { return r >= '0' && r <= '9' }) >= 0 {
			// Keep it and look further along.
			next := stripPhoneRemarks(s[open+end+1:])
			return s[:open+end+1] + next
		}
		s = strings.TrimSpace(s[:open] + " " + s[open+end+1:])
	}
}

// phoneRegionName names the numbering plan of a number for a reason text: the region when
// the calling code has one, the calling code otherwise.
func phoneRegionName(num *phonenumbers.PhoneNumber) string {
	cc := int(num.GetCountryCode())
	if r := phonenumbers.GetRegionCodeForCountryCode(cc); r != "" && r != "ZZ" && r != "001" {
		if n := phonenumbers.GetRegionCodeForNumber(num); n != "" && n != "ZZ" {
			return n
		}
		return r
	}
	return "+" + strconv.Itoa(cc)
}

// stripPhoneScheme removes the wrappers numbers arrive in from links and messaging tools.
// international is true when the wrapper implies the digits carry a country code although
// no "+" is written (wa.me links, WhatsApp JIDs).
func stripPhoneScheme(s string) (rest string, international bool) {
	lower := strings.ToLower(s)
	for _, p := range []string{"https://", "http://"} {
		if strings.HasPrefix(lower, p) {
			s, lower = s[len(p):], lower[len(p):]
			break
		}
	}
	for _, p := range []string{"wa.me/", "api.whatsapp.com/send?phone=", "api.whatsapp.com/send/?phone="} {
		if strings.HasPrefix(lower, p) {
			s = s[len(p):]
			if i := strings.IndexAny(s, "?&#"); i >= 0 {
				s = s[:i]
			}
			return strings.TrimSpace(s), true
		}
	}
	for _, p := range []string{"tel:", "whatsapp:", "wa:", "sms:", "callto:"} {
		if strings.HasPrefix(lower, p) {
			s, lower = strings.TrimSpace(s[len(p):]), strings.TrimSpace(lower[len(p):])
			break
		}
	}
	for _, suffix := range []string{"@s.whatsapp.net", "@c.us"} {
		if strings.HasSuffix(lower, suffix) {
			s = s[:len(s)-len(suffix)]
			// A JID may name a device: "491511234567:12@s.whatsapp.net".
			if i := strings.IndexByte(s, ':'); i >= 0 {
				s = s[:i]
			}
			return strings.TrimSpace(s), true
		}
	}
	return s, false
}

// phoneOnlyPunctuated reports whether s holds nothing but digits and the punctuation people
// put between them, so that reading it as international digits is not a guess about prose.
func phoneOnlyPunctuated(s string) bool {
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
		case r == ' ', r == '-', r == '.', r == '/', r == '(', r == ')', r == '\u00a0':
		default:
			return false
		}
	}
	return true
}

// PhoneDigits returns the digits of an E.164 number without "+", the form WhatsApp uses in
// JIDs ("4915112345678@s.whatsapp.net").
func PhoneDigits(e164 string) string {
	var b strings.Builder
	b.Grow(len(e164))
	for i := 0; i < len(e164); i++ {
		if c := e164[i]; c >= '0' && c <= '9' {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// phoneQuoteShort quotes user input for a reason text, cut so that a pasted essay stays out
// of it.
func phoneQuoteShort(s string) string {
	r := []rune(s)
	if len(r) > 8 {
		return `"` + string(r[:8]) + `…"`
	}
	return `"` + s + `"`
}
