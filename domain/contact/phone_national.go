package contact

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/nyaruka/phonenumbers"
)

// nationalPlan is what phoneFromNational needs of a region's numbering plan: the national
// (trunk) prefixes the parser removes, when they are plain digit strings removed as they are
// (none in Spain or Italy, "0" in Germany, "0" or "180020" in Britain, tried in that order), the
// country calling code and the international (IDD) prefix.
type nationalPlan struct {
	trunks      [][]byte
	countryCode int32
	cc          []byte
	idd         *regexp.Regexp
}

var (
	nationalPlansOnce sync.Once
	nationalPlans     map[string]*nationalPlan // by region; only regions the shortcut applies to
)

func loadNationalPlans() {
	nationalPlans = map[string]*nationalPlan{}
	coll, err := phonenumbers.MetadataCollection()
	if err != nil {
		return // no shortcut; every number takes the library's path
	}
	for _, md := range coll.GetMetadata() {
		if md.GetNationalPrefixTransformRule() != "" || md.GetCountryCode() == 52 { // Mexico's old mobile forms need phoneFixMexicanMobile
			continue
		}
		var trunks [][]byte
		if p := md.GetNationalPrefixForParsing(); p != "" {
			for _, alt := range strings.Split(p, "|") {
				if alt == "" || strings.Trim(alt, "0123456789") != "" {
					trunks = nil
					break
				}
				trunks = append(trunks, []byte(alt))
			}
			if trunks == nil {
				continue
			}
		}
		idd, err := regexp.Compile("^(?:" + md.GetInternationalPrefix() + ")")
		if err != nil {
			continue
		}
		nationalPlans[md.GetId()] = &nationalPlan{
			trunks:      trunks,
			countryCode: md.GetCountryCode(),
			cc:          []byte(strconv.Itoa(int(md.GetCountryCode()))),
			idd:         idd,
		}
	}
}

// phoneFromNational reads the most common way numbers are written in address books, a national
// number in the region it was dialled in ("0151 12345678" in Germany, "612 34 56 78" in Spain),
// without the library's general parser, whose regular expressions are most of an import's
// parsing time. It takes only input whose reading leaves no choice: digits and the separators
// space, "-", ".", "/" alone; a region whose trunk prefixes are plain digit strings; digits that
// start neither with the region's international prefix nor with its calling code; no leading
// zero once the trunk prefix is gone (Italy keeps it). What it returns must still pass the same validation
// as the parser's result, and callers fall back to the parser when it does not, so errors
// always come from the parser. TestNationalShortcutAgreesWithParser and FuzzNormalizePhone
// compare the two readings over every region.
func phoneFromNational(s, region string) (*phonenumbers.PhoneNumber, bool) {
	if region == "" || len(s) > phoneMaxInput {
		return nil, false
	}
	nationalPlansOnce.Do(loadNationalPlans)
	plan := nationalPlans[region]
	if plan == nil {
		return nil, false
	}
	var buf [phoneMaxInput]byte
	digits, ok := plainDigits(s, buf[:])
	if !ok {
		return nil, false
	}
	if bytes.HasPrefix(digits, plan.cc) || plan.idd.Match(digits) {
		return nil, false
	}
	nsn := digits
	for _, t := range plan.trunks {
		if bytes.HasPrefix(digits, t) {
			nsn = digits[len(t):]
			break
		}
	}
	if len(nsn) < 2 || len(nsn) > phonenumbers.MAX_LENGTH_FOR_NSN || nsn[0] == '0' {
		return nil, false
	}
	national, err := strconv.ParseUint(string(nsn), 10, 64)
	if err != nil {
		return nil, false
	}
	code := plan.countryCode
	return &phonenumbers.PhoneNumber{CountryCode: &code, NationalNumber: &national}, true
}
