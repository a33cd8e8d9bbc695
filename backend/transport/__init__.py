"""Transport: the gRPC contract at run time (schema), image streaming (wire), auth and the server."""
