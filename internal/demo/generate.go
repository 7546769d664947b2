package demo

//go:generate go run ./gentape -o ../../testdata/sample.tape
