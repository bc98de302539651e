package main

import (
	"fmt"
	"io"
	"os"
)

// fileCmd runs the file commands the FROM-scratch image has no other program for, so that a
// test can steer a running load or group member through files in a shared volume:
//
//	kclient touch FILE   create FILE (empty) if it does not exist
//	kclient rm FILE      remove FILE; no error when it does not exist
//	kclient cat FILE     copy FILE to stdout
func fileCmd(cmd string, args []string) error {
	if len(args) != 1 {
		usage()
	}
	switch cmd {
	case "touch":
		f, err := os.OpenFile(args[0], os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		return f.Close()
	case "rm":
		if err := os.Remove(args[0]); err != nil && !os.IsNotExist(err) {
			return err
		}
		return nil
	case "cat":
		f, err := os.Open(args[0])
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(os.Stdout, f)
		return err
	}
	return fmt.Errorf("unknown file command %s", cmd)
}
