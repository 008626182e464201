str0 = '  one   two '
assert test_revised(str0) == ['two', 'one'], 'Test failed'
