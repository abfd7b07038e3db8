package contact

import "testing"

func TestPhoneSet(t *testing.T) {
	var s PhoneSet
	for _, c := range []struct {
		phone string
		isNew bool
	}{
		{"+4915112345678", true},
		{"+4915112345678", false},
		{"+14155550123", true},
		{"+123456789012345", true}, // 15 digits, the most E.164 allows
		{"+123456789012345", false},
		{"+0123", true}, // not E.164: kept apart from +123
		{"+123", true},
		{"+0123", false},
		{"not a number", true},
		{"not a number", false},
	} {
		if got := s.Add(c.phone); got != c.isNew {
			t.Errorf("Add(%q) = %v, want %v", c.phone, got, c.isNew)
		}
	}
}
