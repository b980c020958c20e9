-- noop: does nothing; the benchmark uses it to measure jqrun itself.
return function() end
