package model

// Node is any object with a global id. Read-model types implement it by being listed as its
// implementors in the schema; the id field is always resolved through the global id codec.
type Node interface{}
