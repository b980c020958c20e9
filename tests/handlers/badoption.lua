-- badoption: an option of the wrong type.
return { timeout = "soon", handle = function() end }
