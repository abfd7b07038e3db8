package identity

import (
	"errors"

	"github.com/mydigibiz/digibiz/domain/fault"
)

func joinInvalid(errs []error) error {
	var l fault.List
	for _, err := range errs {
		var fe *fault.Error
		if errors.As(err, &fe) {
			l = append(l, fe)
		} else {
			var fl fault.List
			if errors.As(err, &fl) {
				l = append(l, fl...)
			}
		}
	}
	return l.Err()
}
