assert test_revised('a b c') == ['c', 'b', 'a'], 'Test failed'
