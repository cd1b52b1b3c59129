"""Inbound mail: parse, classify (reply / auto-reply / bounce / complaint), trim, thread."""
