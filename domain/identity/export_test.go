package identity

// For the tests and benchmarks of the list of common passwords.
var (
	IsCommonPassword = isCommonPassword
	CommonPasswords  = commonPasswords
	NCSC100k         = ncsc100k
)
