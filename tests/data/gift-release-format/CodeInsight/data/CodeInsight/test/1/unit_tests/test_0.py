assert test('a1b22c333') == ['1', '22', '333'], 'Test failed'
