package contact

import (
	"errors"
	"strings"
	"testing"

	"github.com/nyaruka/phonenumbers"
	"github.com/stretchr/testify/require"
)

func TestNormalizePhone(t *testing.T) {
	t.Parallel()
	tests := []struct {
		raw, country string
		want         string
	}{
		// Germany: international, national with slash, IDD 00 with and without a default
		// country, the "(0)" people insert, area codes in parentheses.
		{"+49 151 12345678", "", "+4915112345678"},
		{"0151/12345678", "DE", "+4915112345678"},
		{"0049 151 12345678", "DE", "+4915112345678"},
		{"004915112345678", "", "+4915112345678"},
		{"004915112345678", "US", "+4915112345678"},
		{"+49 (0) 30 123456", "", "+4930123456"},
		{"(030) 123456", "DE", "+4930123456"},
		{"+49 151 12345678", "de", "+4915112345678"},
		{"  +49 151 12345678\t", " DE ", "+4915112345678"},
		{"015112345678 (private)", "DE", "+4915112345678"},
		// A list whose "+" a spreadsheet dropped; with its trunk 0 the same digits are Leer.
		{"4915112345678", "DE", "+4915112345678"},
		{"0491 5112345", "DE", "+494915112345"},
		// United Kingdom.
		{"07400 123456", "GB", "+447400123456"},
		{"+44 (0)7400 123456", "", "+447400123456"},
		{"0121 234 5678", "GB", "+441212345678"},
		{"tel:+44-121-234-5678", "", "+441212345678"},
		// United States: the usual notations, the US international prefix 011, extensions.
		{"(201) 555-0123", "US", "+12015550123"},
		{"201.555.0123", "US", "+12015550123"},
		{"1-201-555-0123", "US", "+12015550123"},
		{"+1 (201) 555-0123 ext. 42", "", "+12015550123"},
		{"201-555-0123 x42", "US", "+12015550123"},
		{"tel:+1-201-555-0123;ext=7", "", "+12015550123"},
		{"011 49 151 12345678", "US", "+4915112345678"},
		{"1-800-FLOWERS", "US", "+18003569377"},
		// India.
		{"+91 81234 56789", "", "+918123456789"},
		{"+91-81234-56789", "", "+918123456789"},
		{"081234 56789", "IN", "+918123456789"},
		{"8123456789", "IN", "+918123456789"},
		{"918123456789", "IN", "+918123456789"},
		// Brazil.
		{"(11) 96123-4567", "BR", "+5511961234567"},
		{"+55 11 96123-4567", "", "+5511961234567"},
		{"(11) 2345-6789", "BR", "+551123456789"},
		// Area code 55 is also Brazil's calling code; a national number stays national.
		{"(55) 99123-4567", "BR", "+5555991234567"},
		// Nigeria.
		{"0802 123 4567", "NG", "+2348021234567"},
		{"+234 802 123 4567", "", "+2348021234567"},
		{"2348021234567", "NG", "+2348021234567"},
		// Indonesia.
		{"0812-3456-7890", "ID", "+6281234567890"},
		{"+62 812 3456 7890", "", "+6281234567890"},
		{"6281234567890", "ID", "+6281234567890"},
		// Mexico, including the mobile forms abolished in 2019 that WhatsApp JIDs still use.
		{"222 123 4567", "MX", "+522221234567"},
		{"+52 222 123 4567", "", "+522221234567"},
		{"+52 1 222 123 4567", "", "+522221234567"},
		{"044 222 123 4567", "MX", "+522221234567"},
		{"5212221234567@s.whatsapp.net", "", "+522221234567"},
		// South Africa.
		{"071 123 4567", "ZA", "+27711234567"},
		{"+27 71 123 4567", "", "+27711234567"},
		{"27711234567", "ZA", "+27711234567"},
		// Wrappers from messaging tools and links.
		{"whatsapp:+27711234567", "", "+27711234567"},
		{"WhatsApp:+27 71 123 4567", "", "+27711234567"},
		{"https://wa.me/27711234567", "", "+27711234567"},
		{"wa.me/27711234567?text=hi", "", "+27711234567"},
		{"27711234567@s.whatsapp.net", "", "+27711234567"},
		{"27711234567:4@s.whatsapp.net", "", "+27711234567"},
		{"27711234567@c.us", "", "+27711234567"},
		// Full-width digits and plus, as some phones' address books export them.
		{"＋４９ １５１ １２３４５６７８", "", "+4915112345678"},
		// Short numbers of small numbering plans are still valid E.164.
		{"+683 4002", "", "+6834002"},
	}
	for _, tt := range tests {
		t.Run(tt.raw+"/"+tt.country, func(t *testing.T) {
			t.Parallel()
			got, err := NormalizePhone(tt.raw, tt.country)
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestNormalizePhoneErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		raw, country string
		code         string
	}{
		{"", "DE", PhoneCodeEmpty},
		{"   ", "DE", PhoneCodeEmpty},
		{"tel:", "DE", PhoneCodeEmpty},
		{"0151 12345678", "", PhoneCodeNoCountry},
		{"(201) 555-0123", "", PhoneCodeNoCountry},
		// Bare international digits are not guessed without a default country.
		{"4915112345678", "", PhoneCodeNoCountry},
		{"+49 151 12345678", "XX", PhoneCodeInvalidCountry},
		{"+49 151 12345678", "DEU", PhoneCodeInvalidCountry},
		{"0151 12345678", "Germany", PhoneCodeInvalidCountry},
		{"+49 1", "", PhoneCodeTooShort},
		{"12", "DE", PhoneCodeTooShort},
		{"555-0123", "US", PhoneCodeTooShort},
		{"+49 1512 3456789 0123 4567", "", PhoneCodeTooLong},
		{strings.Repeat("1", 300), "DE", PhoneCodeTooLong},
		{"0151 1234567", "DE", PhoneCodeInvalidNumber}, // one digit short for this range
		{"(555) 123-4567", "US", PhoneCodeInvalidNumber},
		{"+1 555 123 4567", "", PhoneCodeInvalidNumber},
		{"+999 1234567", "", PhoneCodeInvalidNumber},
		{"07400 12345", "GB", PhoneCodeInvalidNumber},
		{"00491511234567", "US", PhoneCodeInvalidNumber},
		{"n/a", "DE", PhoneCodeNotANumber},
		{"call me", "DE", PhoneCodeNotANumber},
		{"+", "", PhoneCodeNotANumber},
		{"+49 151 12345678 / +49 151 87654321", "", PhoneCodeNotANumber},
	}
	for _, tt := range tests {
		t.Run(tt.raw+"/"+tt.country, func(t *testing.T) {
			t.Parallel()
			got, err := NormalizePhone(tt.raw, tt.country)
			require.Error(t, err, "got %q", got)
			require.Empty(t, got)
			var pe *PhoneError
			require.True(t, errors.As(err, &pe), "want *PhoneError, got %T", err)
			require.Equal(t, tt.code, pe.Code, "reason: %s", pe.Reason)
			require.Equal(t, tt.raw, pe.Raw)
			require.NotEmpty(t, pe.Reason)
		})
	}
}

func TestPhoneErrorKeepsNumberOutOfMessage(t *testing.T) {
	t.Parallel()
	_, err := NormalizePhone("+1 555 123 4567", "")
	require.Error(t, err)
	require.NotContains(t, err.Error(), "555", "error strings reach logs; the number must not")
	require.Contains(t, err.Error(), "not a valid number in US")
}

func TestPhoneDigits(t *testing.T) {
	t.Parallel()
	require.Equal(t, "4915112345678", PhoneDigits("+4915112345678"))
	require.Equal(t, "", PhoneDigits(""))
	e164, err := NormalizePhone("0151 12345678", "DE")
	require.NoError(t, err)
	require.Equal(t, "4915112345678", PhoneDigits(e164))
}

var phoneFuzzCountries = []string{"", "DE", "GB", "US", "IN", "BR", "NG", "ID", "MX", "ZA", "it", "XX", "ES", "FR", "RU", "CN", "JP", "AR", "CH"}

// FuzzNormalizePhone checks that no input panics, that errors are always *PhoneError with a
// known code, and that every success is a canonical E.164 number that normalises to itself.
func FuzzNormalizePhone(f *testing.F) {
	for _, s := range []string{
		"+49 151 12345678", "0151/12345678", "004915112345678", "(201) 555-0123", "tel:+44-121-234-5678",
		"whatsapp:+27711234567", "https://wa.me/27711234567", "5212221234567@s.whatsapp.net",
		"+1 (201) 555-0123 ext. 42", "015112345678 (private)", "＋４９ １５１ １２３４５６７８", "+52 1 222 123 4567",
		"044 222 123 4567", "1-800-FLOWERS", "tel:863-1234;phone-context=+1-914-555", "((((", "+(0)", "",
	} {
		for i := range phoneFuzzCountries {
			f.Add(s, uint8(i))
		}
	}
	codes := map[string]bool{
		PhoneCodeEmpty: true, PhoneCodeNoCountry: true, PhoneCodeInvalidCountry: true, PhoneCodeTooShort: true,
		PhoneCodeTooLong: true, PhoneCodeInvalidNumber: true, PhoneCodeNotANumber: true,
	}
	f.Fuzz(func(t *testing.T, raw string, ci uint8) {
		country := phoneFuzzCountries[int(ci)%len(phoneFuzzCountries)]
		checkNationalShortcut(t, raw, strings.ToUpper(country))
		got, err := NormalizePhone(raw, country)
		if err != nil {
			var pe *PhoneError
			if !errors.As(err, &pe) {
				t.Fatalf("NormalizePhone(%q, %q): error %T, want *PhoneError", raw, country, err)
			}
			if !codes[pe.Code] || pe.Reason == "" || pe.Raw != raw {
				t.Fatalf("NormalizePhone(%q, %q): bad error %+v", raw, country, pe)
			}
			if got != "" {
				t.Fatalf("NormalizePhone(%q, %q) = %q with error", raw, country, got)
			}
			return
		}
		if len(got) < 5 || len(got) > 16 || got[0] != '+' || PhoneDigits(got) != got[1:] { // Germany has valid numbers as short as +491680
			t.Fatalf("NormalizePhone(%q, %q) = %q, not E.164", raw, country, got)
		}
		for _, c := range []string{"", country} {
			again, err := NormalizePhone(got, c)
			if err != nil || again != got {
				t.Fatalf("NormalizePhone(%q, %q) = %q, but that normalises (in %q) to %q, %v", raw, country, got, c, again, err)
			}
		}
	})
}

// checkNationalShortcut fails t when phoneFromNational reads s as a valid number that the
// library's parser reads differently (or not at all).
func checkNationalShortcut(t *testing.T, s, region string) bool {
	t.Helper()
	num, ok := phoneFromNational(s, region)
	if intl, isIntl := phoneFromInternational(s); isIntl {
		num, ok = intl, true
	}
	if !ok {
		return false
	}
	short, ok := phoneValidE164(num)
	if !ok {
		return false
	}
	full, perr := parsePhoneFully(s, region)
	if perr != nil || full != short {
		t.Fatalf("%q in %s: the shortcut reads %s, the parser %q (%v)", s, region, short, full, perr)
	}
	return true
}

// TestNationalShortcutAgreesWithParser writes the example numbers of every region and number
// type in the national ways people do (as formatted, digits only, with other separators, one
// digit more or less, another last digit) and checks that wherever the shortcut reads a valid
// number, the library's parser reads the same one.
// The international shortcut agrees with the parser too, including numbers written with a
// national prefix after the country code, which only the parser removes.
func TestInternationalShortcutAgreesWithParser(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"+54 11 15 2345 6789": "+5491123456789",
		"+7 8 912 345 67 89":  "+79123456789",
		"+370 8 612 34567":    "+37061234567",
		"+1 1 201 555 0123":   "+12015550123",
		"+49 151 12345678":    "+4915112345678",
		"+44 7400 123456":     "+447400123456",
	} {
		got, err := NormalizePhone(in, "")
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
		checkNationalShortcut(t, in, "")
	}
	for region := range phonenumbers.GetSupportedRegions() {
		ex := phonenumbers.GetExampleNumberForType(region, phonenumbers.MOBILE)
		if ex == nil {
			continue
		}
		intl := phonenumbers.Format(ex, phonenumbers.INTERNATIONAL)
		checkNationalShortcut(t, intl, "")
		checkNationalShortcut(t, strings.ReplaceAll(intl, " ", ""), region)
	}
}

func TestNationalShortcutAgreesWithParser(t *testing.T) {
	t.Parallel()
	types := []phonenumbers.PhoneNumberType{phonenumbers.FIXED_LINE, phonenumbers.MOBILE, phonenumbers.TOLL_FREE,
		phonenumbers.PREMIUM_RATE, phonenumbers.SHARED_COST, phonenumbers.VOIP, phonenumbers.PERSONAL_NUMBER,
		phonenumbers.PAGER, phonenumbers.UAN, phonenumbers.VOICEMAIL, phonenumbers.FIXED_LINE_OR_MOBILE}
	taken, regions := 0, map[string]bool{}
	for region := range phonenumbers.GetSupportedRegions() {
		for _, typ := range types {
			ex := phonenumbers.GetExampleNumberForType(region, typ)
			if ex == nil {
				continue
			}
			national := phonenumbers.Format(ex, phonenumbers.NATIONAL)
			digits := phonenumbers.NormalizeDigitsOnly(national)
			variants := []string{national, digits, strings.ReplaceAll(national, " ", "-"), strings.ReplaceAll(national, " ", "."),
				digits + "1", digits[:len(digits)-1]}
			if len(digits) > 3 {
				variants = append(variants, digits[:3]+"/"+digits[3:])
			}
			for d := byte('0'); d <= '9'; d++ {
				variants = append(variants, digits[:len(digits)-1]+string(d))
			}
			for _, v := range variants {
				if checkNationalShortcut(t, v, region) {
					taken++
					regions[region] = true
				}
			}
		}
	}
	t.Logf("the shortcut read %d written numbers of %d regions", taken, len(regions))
	require.Greater(t, len(regions), 150, "the shortcut applies to most regions")
	for _, r := range []string{"DE", "GB", "FR", "IN", "NG", "ES", "IT", "US", "PL"} {
		require.True(t, regions[r], "the shortcut reads numbers of %s", r)
	}
}

// BenchmarkNormalizePhone measures the per-row cost an import pays for normalisation.
func BenchmarkNormalizePhone(b *testing.B) {
	inputs := []struct{ raw, country string }{
		{"+49 151 12345678", ""}, {"0151/12345678", "DE"}, {"(201) 555-0123", "US"}, {"081234 56789", "IN"},
		{"not a number", "DE"},
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		in := inputs[i%len(inputs)]
		_, _ = NormalizePhone(in.raw, in.country)
		i++
	}
}

// BenchmarkNationalNumbers: numbers written nationally, as most address books hold them, read
// by NormalizePhone (which takes the shortcut) against the library's parser on the same input.
func BenchmarkNationalNumbers(b *testing.B) {
	inputs := []struct{ raw, country string }{
		{"0151 12345678", "DE"}, {"030/1234567", "DE"}, {"07400 123456", "GB"}, {"06 12 34 56 78", "FR"},
		{"081234 56789", "IN"}, {"201-555-0123", "US"}, {"612 34 56 78", "ES"}, {"0803 123 4567", "NG"},
	}
	b.Run("NormalizePhone", func(b *testing.B) {
		i := 0
		for b.Loop() {
			in := inputs[i%len(inputs)]
			if _, err := NormalizePhone(in.raw, in.country); err != nil {
				b.Fatal(in, err)
			}
			i++
		}
	})
	b.Run("parser", func(b *testing.B) {
		i := 0
		for b.Loop() {
			in := inputs[i%len(inputs)]
			if _, err := parsePhoneFully(in.raw, in.country); err != nil {
				b.Fatal(in, err)
			}
			i++
		}
	})
}
