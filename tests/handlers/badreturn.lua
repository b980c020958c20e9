-- badreturn: returns neither a function nor a table with handle.
return 42
